module gocrash.test/corpus/nilpointer

go 1.19
