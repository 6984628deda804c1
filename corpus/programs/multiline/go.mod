module gocrash.test/corpus/multiline

go 1.19
