module gocrash.test/corpus/goroutinepanic

go 1.19
