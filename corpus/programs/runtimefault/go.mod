module gocrash.test/corpus/runtimefault

go 1.19
