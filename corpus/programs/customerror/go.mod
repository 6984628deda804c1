module gocrash.test/corpus/customerror

go 1.19
