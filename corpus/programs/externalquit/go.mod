module gocrash.test/corpus/externalquit

go 1.19
