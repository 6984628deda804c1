module gocrash.test/corpus/dividezero

go 1.19
