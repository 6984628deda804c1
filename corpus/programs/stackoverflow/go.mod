module gocrash.test/corpus/stackoverflow

go 1.19
