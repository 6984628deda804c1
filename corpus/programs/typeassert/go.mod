module gocrash.test/corpus/typeassert

go 1.19
