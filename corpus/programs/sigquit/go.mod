module gocrash.test/corpus/sigquit

go 1.19
