//! Tables of every format, built field by field from the layouts the Go
//! linker writes, and decoded back.

use super::format::{Base, EntryEncoding, FileTable, Format, FuncdataEncoding, FORMATS};
use super::pcvalue::tests::encode;
use super::*;

/// Address of the simulated rodata segment holding inline trees.
const RODATA: u64 = 0x50_0000;
/// Address the table is said to live at.
const TABLE_VADDR: u64 = 0x60_0000;
const TEXT: u64 = 0x40_1000;

struct InlineCall {
    name: &'static str,
    parent_pc: u32,
    func_id: u8,
    start_line: i32,
}

struct FuncSpec {
    name: &'static str,
    size: u32,
    args: i32,
    deferreturn: u32,
    func_id: u8,
    flag: u8,
    start_line: i32,
    /// (value, pc delta in quanta) runs, as [`encode`] takes them.
    pcsp: Vec<(i32, u32)>,
    pcfile: Vec<(i32, u32)>,
    pcln: Vec<(i32, u32)>,
    inline_index: Vec<(i32, u32)>,
    inline_tree: Vec<InlineCall>,
}

/// Builds a table of one format with little-endian fields.
struct Builder {
    format: &'static Format,
    ptr_size: u32,
    quantum: u8,
    files: Vec<&'static str>,
    funcs: Vec<FuncSpec>,
}

/// What a builder produced: the table and the rodata its funcdata points to.
struct Built {
    table: Vec<u8>,
    rodata: Vec<u8>,
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_uint(out: &mut Vec<u8>, value: u64, size: u32) {
    match size {
        4 => put_u32(out, value as u32),
        _ => out.extend_from_slice(&value.to_le_bytes()),
    }
}

fn set_uint(out: &mut [u8], at: usize, value: u64, size: u32) {
    let bytes = value.to_le_bytes();
    out[at..at + size as usize].copy_from_slice(&bytes[..size as usize]);
}

fn align(out: &mut Vec<u8>, to: usize) {
    while out.len() % to != 0 {
        out.push(0);
    }
}

impl Builder {
    fn new(format: &'static Format) -> Self {
        Builder {
            format,
            ptr_size: 8,
            quantum: 1,
            files: vec!["/src/a.go", "/src/b.go"],
            funcs: Vec::new(),
        }
    }

    fn entry(&self, index: usize) -> u64 {
        TEXT + self.funcs[..index]
            .iter()
            .map(|f| u64::from(f.size))
            .sum::<u64>()
    }

    fn build(&self) -> Built {
        let format = self.format;
        let ptr = self.ptr_size;
        let mut table = Vec::new();
        put_u32(&mut table, format.magic);
        table.extend_from_slice(&[0, 0, self.quantum, ptr as u8]);
        let header_size = format.header_size(ptr) as usize;
        table.resize(header_size, 0);
        set_uint(&mut table, 8, self.funcs.len() as u64, ptr);
        let word = |table: &mut Vec<u8>, index: Option<u32>, value: u64| {
            if let Some(index) = index {
                set_uint(table, 8 + (index * ptr) as usize, value, ptr);
            }
        };
        word(&mut table, format.header_nfiles, self.files.len() as u64);
        word(&mut table, format.header_text_start, TEXT);

        // Regions before the function table (Go 1.16 on); the Go 1.2 layout
        // keeps names, pc-value tables and files after the records.
        let mut names = Vec::new();
        let mut name_offsets = std::collections::HashMap::new();
        let mut name_of = |name: &'static str, names: &mut Vec<u8>| -> u32 {
            *name_offsets.entry(name).or_insert_with(|| {
                let offset = names.len() as u32;
                names.extend_from_slice(name.as_bytes());
                names.push(0);
                offset
            })
        };
        let mut pctab = vec![0u8];
        let mut table_offsets = Vec::new();
        for func in &self.funcs {
            let mut offsets = Vec::new();
            for runs in [&func.pcsp, &func.pcfile, &func.pcln, &func.inline_index] {
                if runs.is_empty() {
                    offsets.push(0);
                } else {
                    offsets.push(pctab.len() as u32);
                    pctab.extend(encode(runs));
                }
            }
            table_offsets.push(offsets);
        }
        let func_names: Vec<u32> = self
            .funcs
            .iter()
            .map(|f| name_of(f.name, &mut names))
            .collect();
        let inline_names: Vec<Vec<u32>> = self
            .funcs
            .iter()
            .map(|f| {
                f.inline_tree
                    .iter()
                    .map(|call| name_of(call.name, &mut names))
                    .collect()
            })
            .collect();

        let mut filetab = Vec::new();
        let mut file_offsets = Vec::new();
        for file in &self.files {
            file_offsets.push(filetab.len() as u32);
            filetab.extend_from_slice(file.as_bytes());
            filetab.push(0);
        }

        let (names_at, pctab_at);
        if format.file_table == FileTable::CompilationUnits {
            names_at = table.len() as u64;
            word(&mut table, format.header_funcnames, names_at);
            table.extend_from_slice(&names);
            align(&mut table, 4);
            let at = table.len() as u64;
            word(&mut table, format.header_cutab, at);
            for &offset in &file_offsets {
                put_u32(&mut table, offset);
            }
            let at = table.len() as u64;
            word(&mut table, format.header_filetab, at);
            table.extend_from_slice(&filetab);
            pctab_at = table.len() as u64;
            word(&mut table, format.header_pctab, pctab_at);
            table.extend_from_slice(&pctab);
            align(&mut table, ptr as usize);
            let at = table.len() as u64;
            word(&mut table, format.header_functab, at);
        } else {
            // Fixed up below, once the records are placed.
            names_at = 0;
            pctab_at = 0;
        }

        // Inline trees go to rodata.
        let mut rodata = vec![0u8; 16];
        let mut trees = Vec::new();
        for (func, names) in self.funcs.iter().zip(&inline_names) {
            if func.inline_tree.is_empty() {
                trees.push(None);
                continue;
            }
            align(&mut rodata, 4);
            trees.push(Some(RODATA + rodata.len() as u64));
            let layout = format.inline_record;
            for (call, &name) in func.inline_tree.iter().zip(names) {
                let start = rodata.len();
                rodata.resize(start + layout.size as usize, 0);
                rodata[start + layout.func_id as usize] = call.func_id;
                set_uint(
                    &mut rodata,
                    start + layout.name as usize,
                    u64::from(name),
                    4,
                );
                set_uint(
                    &mut rodata,
                    start + layout.parent_pc as usize,
                    u64::from(call.parent_pc),
                    4,
                );
                if let Some(at) = layout.start_line {
                    set_uint(&mut rodata, start + at as usize, call.start_line as u64, 4);
                }
            }
        }

        // Function table then records.
        let functab_at = table.len();
        let field = format.functab_field_size(ptr);
        let raw_entry = |entry: u64| match format.entry {
            EntryEncoding::Address => entry,
            EntryEncoding::TextOffset => entry - TEXT,
        };
        for index in 0..=self.funcs.len() {
            put_uint(&mut table, raw_entry(self.entry(index)), field);
            if index < self.funcs.len() {
                put_uint(&mut table, 0, field);
            }
        }
        let filetab_word = table.len();
        if format.file_table == FileTable::Global {
            put_u32(&mut table, 0);
        }
        let record_base = match format.func_record_base {
            Base::Table => 0,
            _ => functab_at,
        };
        let mut name_fixups = Vec::new();
        let mut pc_fixups = Vec::new();
        for (index, func) in self.funcs.iter().enumerate() {
            align(&mut table, ptr as usize);
            let record = table.len();
            set_uint(
                &mut table,
                functab_at + (2 * index + 1) * field as usize,
                (record - record_base) as u64,
                field,
            );
            put_uint(
                &mut table,
                raw_entry(self.entry(index)),
                format.func_entry_size(ptr),
            );
            name_fixups.push((table.len(), func_names[index]));
            put_u32(&mut table, func_names[index]);
            put_u32(&mut table, func.args as u32);
            put_u32(&mut table, func.deferreturn);
            for &offset in &table_offsets[index][..3] {
                pc_fixups.push((table.len(), offset));
                put_u32(&mut table, offset);
            }
            let npcdata = if func.inline_tree.is_empty() { 0 } else { 3 };
            put_u32(&mut table, npcdata);
            if format.func_cu_offset.is_some() {
                put_u32(&mut table, 0);
            }
            if format.func_start_line.is_some() {
                put_u32(&mut table, func.start_line as u32);
            }
            let nfuncdata = if func.inline_tree.is_empty() {
                0
            } else {
                format.funcdata_inline_tree + 1
            };
            let flag = if format.func_has_flag { func.flag } else { 0 };
            table.extend_from_slice(&[func.func_id, flag, 0, nfuncdata as u8]);
            if npcdata > 0 {
                put_u32(&mut table, 0);
                put_u32(&mut table, 0);
                pc_fixups.push((table.len(), table_offsets[index][3]));
                put_u32(&mut table, table_offsets[index][3]);
            }
            if let Some(tree) = trees[index] {
                match format.funcdata {
                    FuncdataEncoding::Address => {
                        align(&mut table, ptr as usize);
                        for slot in 0..nfuncdata {
                            let value = if slot == format.funcdata_inline_tree {
                                tree
                            } else {
                                0
                            };
                            put_uint(&mut table, value, ptr);
                        }
                    }
                    FuncdataEncoding::GofuncOffset => {
                        for slot in 0..nfuncdata {
                            let value = if slot == format.funcdata_inline_tree {
                                (tree - RODATA) as u32
                            } else {
                                u32::MAX
                            };
                            put_u32(&mut table, value);
                        }
                    }
                }
            }
        }

        if format.file_table == FileTable::Global {
            // Names, pc-value tables and the file table follow the records;
            // their offsets are relative to the table start.
            let names_start = table.len() as u32;
            table.extend_from_slice(&names);
            let pctab_start = table.len() as u32;
            table.extend_from_slice(&pctab);
            for (at, offset) in name_fixups {
                set_uint(&mut table, at, u64::from(offset + names_start), 4);
            }
            for (at, offset) in pc_fixups {
                if offset != 0 {
                    set_uint(&mut table, at, u64::from(offset + pctab_start), 4);
                }
            }
            for (func, tree) in self.funcs.iter().zip(&trees) {
                if let Some(tree) = tree {
                    let start = (tree - RODATA) as usize;
                    let layout = format.inline_record;
                    for call in 0..func.inline_tree.len() {
                        let at = start + call * layout.size as usize + layout.name as usize;
                        let offset = u32::from_le_bytes(rodata[at..at + 4].try_into().unwrap());
                        set_uint(&mut rodata, at, u64::from(offset + names_start), 4);
                    }
                }
            }
            align(&mut table, 4);
            let files_at = table.len();
            set_uint(&mut table, filetab_word, files_at as u64, 4);
            // Index 0 is unused, so the count includes it.
            put_u32(&mut table, self.files.len() as u32 + 1);
            let names_at = files_at + 4 * (self.files.len() + 1);
            for &offset in &file_offsets {
                put_u32(&mut table, (names_at as u32) + offset);
            }
            table.extend_from_slice(&filetab);
        }
        let _ = (names_at, pctab_at);
        Built { table, rodata }
    }
}

impl Built {
    fn pclntab(&self) -> Pclntab<'_> {
        let mut tab = Pclntab::parse(&self.table).expect("built table parses");
        tab.set_text_start(TEXT);
        tab.set_vaddr(TABLE_VADDR);
        tab.set_gofunc(RODATA);
        tab.set_memory(Memory::new(vec![Segment {
            vaddr: RODATA,
            data: &self.rodata,
            executable: false,
            writable: false,
        }]));
        tab
    }
}

/// The Go 1.2 format numbers files from 1; the others index the cutab from 0.
fn file_value(format: &Format, file: i32) -> i32 {
    match format.file_table {
        FileTable::Global => file + 1,
        FileTable::CompilationUnits => file,
    }
}

/// Two functions: `main.plain` and `main.outer`, into which `main.middle`
/// and, inside it, `main.leaf` were inlined.
fn sample(format: &'static Format) -> Builder {
    let mut builder = Builder::new(format);
    builder.funcs.push(FuncSpec {
        name: "main.plain",
        size: 0x20,
        args: 16,
        deferreturn: 0,
        func_id: 0,
        flag: 0,
        start_line: 3,
        pcsp: vec![(0, 4), (24, 0x18), (0, 4)],
        pcfile: vec![(file_value(format, 0), 0x20)],
        pcln: vec![(4, 8), (5, 8), (6, 0x10)],
        inline_index: vec![],
        inline_tree: vec![],
    });
    // main.outer at TEXT+0x20, 0x40 bytes:
    //   +0x00..+0x10 outer's own code, line 20
    //   +0x10..+0x18 middle (index 0), b.go line 31
    //   +0x18..+0x20 leaf inside middle (index 1), b.go line 40
    //   +0x20..+0x40 outer again, line 22
    // middle's call site is outer+0x0c (line 21); leaf's is middle at +0x14 (line 32).
    builder.funcs.push(FuncSpec {
        name: "main.outer",
        size: 0x40,
        args: 8,
        deferreturn: 0x30,
        func_id: 0,
        flag: flag_bits(),
        start_line: 19,
        pcsp: vec![(0, 4), (32, 0x3c)],
        pcfile: vec![
            (file_value(format, 0), 0x10),
            (file_value(format, 1), 0x10),
            (file_value(format, 0), 0x20),
        ],
        pcln: vec![(20, 0x0c), (21, 4), (31, 4), (32, 4), (40, 8), (22, 0x20)],
        inline_index: vec![(-1, 0x10), (0, 8), (1, 8), (-1, 0x20)],
        inline_tree: vec![
            InlineCall {
                name: "main.middle",
                parent_pc: 0x0c,
                func_id: 0,
                start_line: 30,
            },
            InlineCall {
                name: "main.leaf",
                parent_pc: 0x14,
                func_id: 0,
                start_line: 39,
            },
        ],
    });
    builder
}

fn flag_bits() -> u8 {
    super::func::flag::TOP_FRAME
}

fn location(tab: &Pclntab<'_>, pc: u64) -> (String, Option<String>, Option<i32>) {
    let frame = tab.resolve(pc).unwrap().expect("pc is inside a function");
    (
        frame.function.into_owned(),
        frame.file.map(|f| f.into_owned()),
        frame.line,
    )
}

fn inlined(tab: &Pclntab<'_>, pc: u64) -> Vec<(String, String, i32, bool)> {
    let mut frames = Vec::new();
    assert!(tab.resolve_inlined(pc, &mut frames).unwrap());
    frames
        .into_iter()
        .map(|f| {
            (
                f.function.into_owned(),
                f.file.unwrap().into_owned(),
                f.line.unwrap(),
                f.inlined,
            )
        })
        .collect()
}

#[test]
fn every_format_resolves_names_files_and_lines() {
    for format in &FORMATS {
        let built = sample(format).build();
        let tab = built.pclntab();
        let name = format.versions;
        assert_eq!(tab.len(), 2, "{name}");
        assert_eq!(tab.text_range().unwrap(), TEXT..TEXT + 0x60, "{name}");
        let a = Some("/src/a.go".to_owned());
        let b = Some("/src/b.go".to_owned());
        assert_eq!(
            location(&tab, TEXT),
            ("main.plain".into(), a.clone(), Some(4)),
            "{name}"
        );
        assert_eq!(
            location(&tab, TEXT + 0x0f),
            ("main.plain".into(), a.clone(), Some(5)),
            "{name}"
        );
        assert_eq!(
            location(&tab, TEXT + 0x1f),
            ("main.plain".into(), a.clone(), Some(6)),
            "{name}"
        );
        assert_eq!(
            location(&tab, TEXT + 0x20),
            ("main.outer".into(), a.clone(), Some(20)),
            "{name}"
        );
        // Inside inlined code addr2line names the physical function with the
        // inlined function's file and line.
        assert_eq!(
            location(&tab, TEXT + 0x38),
            ("main.outer".into(), b.clone(), Some(40)),
            "{name}"
        );
        assert_eq!(
            location(&tab, TEXT + 0x5f),
            ("main.outer".into(), a.clone(), Some(22)),
            "{name}"
        );
        assert!(tab.resolve(TEXT - 1).unwrap().is_none(), "{name}");
        assert!(tab.resolve(TEXT + 0x60).unwrap().is_none(), "{name}");
    }
}

#[test]
fn every_format_expands_inline_trees() {
    for format in &FORMATS {
        let built = sample(format).build();
        let tab = built.pclntab();
        let name = format.versions;
        let outer = TEXT + 0x20;
        assert_eq!(
            inlined(&tab, outer + 0x1a),
            [
                ("main.leaf".into(), "/src/b.go".into(), 40, true),
                ("main.middle".into(), "/src/b.go".into(), 32, true),
                ("main.outer".into(), "/src/a.go".into(), 21, false),
            ],
            "{name}"
        );
        assert_eq!(
            inlined(&tab, outer + 0x10),
            [
                ("main.middle".into(), "/src/b.go".into(), 31, true),
                ("main.outer".into(), "/src/a.go".into(), 21, false)
            ],
            "{name}"
        );
        assert_eq!(
            inlined(&tab, outer + 0x2c),
            [("main.outer".into(), "/src/a.go".into(), 22, false)],
            "{name}"
        );
        assert_eq!(
            inlined(&tab, TEXT + 2),
            [("main.plain".into(), "/src/a.go".into(), 4, false)],
            "{name}"
        );
    }
}

#[test]
fn every_format_decodes_func_fields() {
    for format in &FORMATS {
        let built = sample(format).build();
        let tab = built.pclntab();
        let name = format.versions;
        let outer = tab.func(tab.find_func(TEXT + 0x25).unwrap()).unwrap();
        assert_eq!(outer.index, FuncIndex(1), "{name}");
        assert_eq!(
            (outer.entry, outer.end),
            (TEXT + 0x20, TEXT + 0x60),
            "{name}"
        );
        assert_eq!(outer.args, 8, "{name}");
        assert_eq!(outer.deferreturn, 0x30, "{name}");
        let expected_flag = if format.func_has_flag {
            super::func::flag::TOP_FRAME
        } else {
            0
        };
        assert_eq!(outer.flag, expected_flag, "{name}");
        assert_eq!(
            outer.start_line,
            format.func_start_line.map(|_| 19),
            "{name}"
        );
        assert_eq!(tab.pcsp(&outer, outer.entry).unwrap(), Some(0), "{name}");
        assert_eq!(
            tab.pcsp(&outer, outer.entry + 4).unwrap(),
            Some(32),
            "{name}"
        );
        assert_eq!(
            tab.pcdata(&outer, func::pcdata::INLINE_TREE_INDEX, outer.entry + 0x19)
                .unwrap(),
            Some(1),
            "{name}"
        );
        assert_eq!(
            tab.pcdata(&outer, func::pcdata::UNSAFE_POINT, outer.entry)
                .unwrap(),
            None,
            "{name}"
        );
        let plain = tab.func(FuncIndex(0)).unwrap();
        assert_eq!(tab.func_name(&plain).unwrap(), "main.plain", "{name}");
        assert_eq!(tab.inline_tree_address(&plain).unwrap(), None, "{name}");
        assert!(tab.inline_tree_address(&outer).unwrap().is_some(), "{name}");
        let names: Vec<String> = tab
            .funcs()
            .map(|f| tab.func_name(&f.unwrap()).unwrap().into_owned())
            .collect();
        assert_eq!(names, ["main.plain", "main.outer"], "{name}");
        tab.validate().unwrap();
    }
}

#[test]
fn arm64_quantum_scales_tables() {
    let mut builder = sample(&FORMATS[3]);
    builder.quantum = 4;
    // Each pc delta now counts 4-byte instructions, so the same runs cover
    // four times the bytes; the function sizes stay as declared.
    for func in &mut builder.funcs {
        func.size *= 4;
    }
    let built = builder.build();
    let tab = built.pclntab();
    assert_eq!(tab.quantum(), 4);
    assert_eq!(location(&tab, TEXT + 0x0f * 4).2, Some(5));
    assert_eq!(
        location(&tab, TEXT + 0x80 + 0x1a * 4).1.as_deref(),
        Some("/src/b.go")
    );
}

#[test]
fn pointer_size_four_tables_decode() {
    for format in &FORMATS {
        let mut builder = sample(format);
        builder.ptr_size = 4;
        let built = builder.build();
        let tab = built.pclntab();
        assert_eq!(tab.ptr_size(), 4);
        assert_eq!(
            location(&tab, TEXT + 0x38),
            ("main.outer".into(), Some("/src/b.go".into()), Some(40)),
            "{}",
            format.versions
        );
        assert_eq!(inlined(&tab, TEXT + 0x3a).len(), 3, "{}", format.versions);
    }
}

#[test]
fn header_text_start_is_the_default() {
    let built = sample(&FORMATS[2]).build();
    let tab = Pclntab::parse(&built.table).unwrap();
    assert_eq!(tab.text_start(), TEXT);
    assert_eq!(tab.header().text_start, Some(TEXT));
}

#[test]
fn bad_magic_is_an_error() {
    let mut built = sample(&FORMATS[3]).build();
    built.table[0] = 0x12;
    let err = Pclntab::parse(&built.table).unwrap_err();
    assert!(matches!(err, PclntabError::BadMagic { .. }), "{err}");
}

#[test]
fn bad_quantum_and_pointer_size_are_errors() {
    let mut built = sample(&FORMATS[3]).build();
    built.table[6] = 3;
    assert!(matches!(
        Pclntab::parse(&built.table),
        Err(PclntabError::BadHeaderField {
            field: "pc quantum",
            ..
        })
    ));
    built.table[6] = 1;
    built.table[7] = 2;
    assert!(matches!(
        Pclntab::parse(&built.table),
        Err(PclntabError::BadHeaderField {
            field: "pointer size",
            ..
        })
    ));
}

#[test]
fn header_offset_out_of_range_is_an_error() {
    let mut built = sample(&FORMATS[3]).build();
    // The pctab word (index 6) points past the end.
    let len = built.table.len() as u64;
    set_uint(&mut built.table, 8 + 6 * 8, len + 10, 8);
    let err = Pclntab::parse(&built.table).unwrap_err();
    assert!(
        matches!(
            err,
            PclntabError::OutOfRange {
                structure: "pc-value tables",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn huge_function_count_is_an_error() {
    let mut built = sample(&FORMATS[1]).build();
    set_uint(&mut built.table, 8, 1 << 40, 8);
    let err = Pclntab::parse(&built.table).unwrap_err();
    assert!(matches!(err, PclntabError::TooMany { .. }), "{err}");
}

#[test]
fn record_offset_out_of_range_is_an_error() {
    let mut built = sample(&FORMATS[3]).build();
    let functab = Pclntab::parse(&built.table).unwrap().header().functab as usize;
    // Function 1's record offset.
    set_uint(&mut built.table, functab + 3 * 4, 0xffff_0000, 4);
    let tab = built.pclntab();
    let err = tab.resolve(TEXT + 0x30).unwrap_err();
    assert!(
        matches!(
            err,
            PclntabError::OutOfRange {
                structure: "_func record",
                ..
            }
        ),
        "{err}"
    );
    // The error is cached and returned again.
    assert_eq!(tab.resolve(TEXT + 0x31).unwrap_err(), err);
    // The other function still resolves.
    assert_eq!(location(&tab, TEXT).0, "main.plain");
}

#[test]
fn pcvalue_offset_out_of_range_is_an_error() {
    let mut built = sample(&FORMATS[2]).build();
    let tab = Pclntab::parse(&built.table).unwrap();
    let record = tab.func(FuncIndex(0)).unwrap().record_offset as usize;
    // pcln sits after entry (4), name, args, deferreturn, pcsp, pcfile.
    set_uint(&mut built.table, record + 4 + 20, 0x7fff_ffff, 4);
    let tab = built.pclntab();
    let err = tab.resolve(TEXT).unwrap_err();
    assert!(
        matches!(
            err,
            PclntabError::OutOfRange {
                structure: "pc-value table",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unmapped_inline_tree_is_an_error() {
    let built = sample(&FORMATS[3]).build();
    let mut tab = Pclntab::parse(&built.table).unwrap();
    tab.set_text_start(TEXT);
    tab.set_gofunc(RODATA + 0x10_0000);
    let mut frames = Vec::new();
    let err = tab.resolve_inlined(TEXT + 0x3a, &mut frames).unwrap_err();
    assert!(
        matches!(err, PclntabError::InlineTreeUnmapped { .. }),
        "{err}"
    );
}

#[test]
fn entry_mismatch_is_an_error() {
    let mut built = sample(&FORMATS[3]).build();
    let tab = Pclntab::parse(&built.table).unwrap();
    let record = tab.func(FuncIndex(1)).unwrap().record_offset as usize;
    set_uint(&mut built.table, record, 0x999, 4);
    let tab = built.pclntab();
    assert!(matches!(
        tab.func(FuncIndex(1)),
        Err(PclntabError::EntryMismatch { .. })
    ));
}

#[test]
fn truncated_tables_never_panic() {
    for format in &FORMATS {
        let built = sample(format).build();
        for len in 0..built.table.len() {
            let Ok(mut tab) = Pclntab::parse(&built.table[..len]) else {
                continue;
            };
            tab.set_text_start(TEXT);
            tab.set_gofunc(RODATA);
            tab.set_memory(Memory::new(vec![Segment {
                vaddr: RODATA,
                data: &built.rodata,
                executable: false,
                writable: false,
            }]));
            let _ = tab.validate();
            let _ = tab.check_tables();
            for pc in (TEXT - 1..TEXT + 0x61).step_by(3) {
                let _ = tab.resolve(pc);
                let _ = tab.resolve_inlined(pc, &mut Vec::new());
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    for format in &FORMATS {
        let built = sample(format).build();
        // Overwrite each byte in turn with values that stress offsets and counts.
        for at in 8..built.table.len() {
            for value in [0x00, 0x7f, 0xff] {
                let mut table = built.table.clone();
                table[at] = value;
                let Ok(mut tab) = Pclntab::parse(&table) else {
                    continue;
                };
                tab.set_text_start(TEXT);
                tab.set_gofunc(RODATA);
                tab.set_memory(Memory::new(vec![Segment {
                    vaddr: RODATA,
                    data: &built.rodata,
                    executable: false,
                    writable: false,
                }]));
                let _ = tab.check_tables();
                for pc in [TEXT, TEXT + 0x10, TEXT + 0x3a, TEXT + 0x5f] {
                    let _ = tab.resolve(pc);
                    let _ = tab.resolve_inlined(pc, &mut Vec::new());
                }
            }
        }
    }
}

#[test]
fn walk_lookups_record_damage() {
    use crate::unwind::pclntab_funcs::PclntabFuncs;
    use crate::unwind::FuncTable;

    let mut built = sample(&FORMATS[3]).build();
    let functab = Pclntab::parse(&built.table).unwrap().header().functab as usize;
    // Function 1's record offset.
    set_uint(&mut built.table, functab + 3 * 4, 0xffff_0000, 4);
    let tab = built.pclntab();
    let funcs = PclntabFuncs::new(&tab, 0);
    assert!(funcs.damage().is_none());

    assert_eq!(
        funcs.func(TEXT).map(|f| f.name).as_deref(),
        Some("main.plain")
    );
    assert!(funcs.damage().is_none(), "a healthy record reads");
    assert!(funcs.func(TEXT + 0x30).is_none());
    assert!(funcs.source_frames(TEXT + 0x31).is_empty());
    let (first, count) = funcs.damage().expect("the bad record is recorded");
    assert_eq!(count, 2);
    assert!(first.contains("_func record at offset 0xffff00"), "{first}");
    assert!(first.contains("needs 0x2c bytes"), "{first}");
}

/// Adds `delta` to the header word at `index` of a Go 1.20 table.
fn shift_header_word(table: &mut [u8], index: Option<u32>, delta: i64) {
    let at = 8 + index.expect("the format has the word") as usize * 8;
    let value = u64::from_le_bytes(table[at..at + 8].try_into().unwrap());
    set_uint(table, at, value.wrapping_add_signed(delta), 8);
}

#[test]
fn every_format_passes_table_checks() {
    for format in FORMATS.iter() {
        let built = sample(format).build();
        let tab = built.pclntab();
        assert_eq!(tab.check_tables(), Ok(()), "{}", format.versions);
    }
}

#[test]
fn shifted_string_tables_are_errors() {
    let format = &FORMATS[3];
    for (word, structure) in [
        (format.header_funcnames, "function name"),
        (format.header_filetab, "file name"),
    ] {
        let mut built = sample(format).build();
        shift_header_word(&mut built.table, word, 1);
        let tab = built.pclntab();
        let err = tab.check_tables().unwrap_err();
        assert!(
            matches!(err, PclntabError::NotStringStart { structure: found, .. } if found == structure),
            "{structure}: {err}"
        );
    }
}

#[test]
fn tables_out_of_order_are_an_error() {
    let format = &FORMATS[3];
    let mut built = sample(format).build();
    let header = Pclntab::parse(&built.table).unwrap().header().clone();
    let (funcnames, cutab) = (header.funcnames, header.cutab);
    shift_header_word(
        &mut built.table,
        format.header_cutab,
        funcnames as i64 - cutab as i64 - 1,
    );
    let err = Pclntab::parse(&built.table).unwrap_err();
    assert!(
        matches!(
            err,
            PclntabError::TablesOutOfOrder {
                earlier: "function name table",
                later: "compilation unit table",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn cut_name_table_is_an_error() {
    let format = &FORMATS[3];
    let mut built = sample(format).build();
    // The compilation unit table now starts inside the last name.
    shift_header_word(&mut built.table, format.header_cutab, -2);
    let err = Pclntab::parse(&built.table).unwrap_err();
    assert!(
        matches!(
            err,
            PclntabError::UnterminatedTable {
                structure: "function name table",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn newline_in_name_is_an_error() {
    let mut built = sample(&FORMATS[3]).build();
    let at = built
        .table
        .windows(10)
        .position(|window| window == b"main.plain")
        .expect("the name is in the table");
    built.table[at + 4] = b'\n';
    let tab = built.pclntab();
    let err = tab.check_tables().unwrap_err();
    assert_eq!(
        err,
        PclntabError::ControlByte {
            structure: "function name table",
            offset: at as u64 + 4,
            byte: b'\n',
        },
        "{err}"
    );
}
