module gocrash.test/corpus/oncepanic

go 1.19
