module gocrash.test/corpus/genericclosure

go 1.19
