module gocrash.test/corpus/inlinedindex

go 1.19
