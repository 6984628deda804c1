module gocrash.test/corpus/deadlock

go 1.19
