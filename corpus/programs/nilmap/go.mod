module gocrash.test/corpus/nilmap

go 1.19
