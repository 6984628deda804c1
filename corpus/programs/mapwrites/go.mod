module gocrash.test/corpus/mapwrites

go 1.19
