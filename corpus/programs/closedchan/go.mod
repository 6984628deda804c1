module gocrash.test/corpus/closedchan

go 1.19
