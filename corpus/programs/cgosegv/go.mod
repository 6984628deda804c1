module gocrash.test/corpus/cgosegv

go 1.19
