module gocrash.test/corpus/longwait

go 1.19
