module gocrash.test/states

go 1.19
