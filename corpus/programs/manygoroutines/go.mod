module gocrash.test/corpus/manygoroutines

go 1.19
