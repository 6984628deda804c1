module gocrash.test/corpus/deeprecursion

go 1.19
