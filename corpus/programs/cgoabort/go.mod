module gocrash.test/corpus/cgoabort

go 1.19
