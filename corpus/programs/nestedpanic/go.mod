module gocrash.test/corpus/nestedpanic

go 1.19
