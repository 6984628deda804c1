module gocrash.test/corpus/wrappederror

go 1.19
