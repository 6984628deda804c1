//! A small builder of 64-bit little-endian ELF images for unit tests.
//!
//! It lays out program headers, segment bytes, sections (inside a segment or
//! standalone) and symbol tables the way a linker would, so the parsers under
//! test see a file that `object` accepts. It checks nothing: tests use it to
//! write damaged files too.

use object::elf;

const FILE_HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;
const SECTION_HEADER_SIZE: usize = 64;
const SYMBOL_SIZE: usize = 24;
const PAGE_SIZE: u64 = 0x1000;

/// One program header and the bytes it maps.
pub(crate) struct Segment {
    pub p_type: elf::ProgramType,
    pub flags: elf::ProgramFlags,
    pub address: u64,
    pub bytes: Vec<u8>,
    pub align: u64,
}

enum SectionContent {
    /// A window onto a segment's bytes, as allocated sections are.
    InSegment {
        segment: usize,
        offset: usize,
        size: usize,
    },
    /// Bytes stored after the segments, as debug sections and symbol tables are.
    Standalone(Vec<u8>),
}

struct Section {
    name: String,
    sh_type: elf::SectionType,
    flags: elf::SectionFlags,
    link: u32,
    info: u32,
    entsize: u64,
    align: u64,
    content: SectionContent,
}

/// A symbol for [`ElfImage::symbol_table`].
pub(crate) struct TestSymbol<'a> {
    pub name: &'a str,
    pub value: u64,
    pub size: u64,
    pub bind: elf::SymbolBind,
    pub kind: elf::SymbolType,
}

/// An ELF image under construction.
pub(crate) struct ElfImage {
    e_type: elf::FileType,
    segments: Vec<Segment>,
    sections: Vec<Section>,
    with_section_headers: bool,
}

impl ElfImage {
    /// Starts an `ET_EXEC` image for x86-64 with no segments and no sections.
    pub fn new() -> Self {
        ElfImage {
            e_type: elf::ET_EXEC,
            segments: Vec::new(),
            sections: Vec::new(),
            with_section_headers: true,
        }
    }

    /// Marks the image as a shared object (`ET_DYN`), as PIE binaries and libraries are.
    pub fn shared_object(mut self) -> Self {
        self.e_type = elf::ET_DYN;
        self
    }

    /// Leaves the section header table out, as `llvm-objcopy --strip-sections` does.
    pub fn without_section_headers(mut self) -> Self {
        self.with_section_headers = false;
        self
    }

    /// Adds a program header and returns its index.
    pub fn segment(
        &mut self,
        p_type: elf::ProgramType,
        flags: elf::ProgramFlags,
        address: u64,
        bytes: Vec<u8>,
    ) -> usize {
        let align = if p_type == elf::PT_NOTE { 4 } else { PAGE_SIZE };
        self.segments.push(Segment {
            p_type,
            flags,
            address,
            bytes,
            align,
        });
        self.segments.len() - 1
    }

    /// Adds an allocated section covering `size` bytes of a segment from `offset`.
    pub fn section_in_segment(
        &mut self,
        name: &str,
        sh_type: elf::SectionType,
        segment: usize,
        offset: usize,
        size: usize,
    ) -> u32 {
        self.push_section(Section {
            name: name.to_owned(),
            sh_type,
            flags: elf::SHF_ALLOC,
            link: 0,
            info: 0,
            entsize: 0,
            align: 4,
            content: SectionContent::InSegment {
                segment,
                offset,
                size,
            },
        })
    }

    /// Adds a non-allocated section with its own bytes, such as `.debug_info`.
    pub fn standalone_section(
        &mut self,
        name: &str,
        sh_type: elf::SectionType,
        flags: elf::SectionFlags,
        bytes: Vec<u8>,
    ) -> u32 {
        self.push_section(Section {
            name: name.to_owned(),
            sh_type,
            flags,
            link: 0,
            info: 0,
            entsize: 0,
            align: 1,
            content: SectionContent::Standalone(bytes),
        })
    }

    /// Adds a symbol table (`SHT_SYMTAB` named `.symtab`, or `SHT_DYNSYM`
    /// named `.dynsym`) and its string table. Every symbol is given section
    /// index `shndx`.
    pub fn symbol_table(
        &mut self,
        sh_type: elf::SectionType,
        shndx: u16,
        symbols: &[TestSymbol<'_>],
    ) {
        let (table_name, strings_name) = if sh_type == elf::SHT_DYNSYM {
            (".dynsym", ".dynstr")
        } else {
            (".symtab", ".strtab")
        };
        let mut strings = vec![0u8];
        let mut table = vec![0u8; SYMBOL_SIZE];
        for symbol in symbols {
            let name_offset = strings.len() as u32;
            strings.extend_from_slice(symbol.name.as_bytes());
            strings.push(0);
            table.extend_from_slice(&name_offset.to_le_bytes());
            table.push((symbol.bind.0 << 4) | (symbol.kind.0 & 0xf));
            table.push(0);
            table.extend_from_slice(&shndx.to_le_bytes());
            table.extend_from_slice(&symbol.value.to_le_bytes());
            table.extend_from_slice(&symbol.size.to_le_bytes());
        }
        let strings_index =
            self.standalone_section(strings_name, elf::SHT_STRTAB, elf::SectionFlags(0), strings);
        let table_index = self.standalone_section(table_name, sh_type, elf::SectionFlags(0), table);
        if let Some(table) = self.sections.get_mut(table_index as usize - 1) {
            table.link = strings_index;
            // Every symbol but the null one is global or weak here.
            table.info = 1;
            table.entsize = SYMBOL_SIZE as u64;
            table.align = 8;
        }
    }

    fn push_section(&mut self, section: Section) -> u32 {
        self.sections.push(section);
        // Index 0 is the null section header.
        self.sections.len() as u32
    }

    /// Lays the image out and returns its bytes.
    pub fn build(&self) -> Vec<u8> {
        let phdrs_end = FILE_HEADER_SIZE + PROGRAM_HEADER_SIZE * self.segments.len();
        let mut out = vec![0u8; phdrs_end];

        let mut segment_offsets = Vec::new();
        for segment in &self.segments {
            let offset = next_congruent(out.len() as u64, segment.address % PAGE_SIZE);
            out.resize(offset as usize, 0);
            out.extend_from_slice(&segment.bytes);
            segment_offsets.push(offset);
        }

        let mut shstrtab = vec![0u8];
        let mut name_offsets = Vec::new();
        for section in &self.sections {
            name_offsets.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(section.name.as_bytes());
            shstrtab.push(0);
        }
        let shstrtab_name = shstrtab.len() as u32;
        shstrtab.extend_from_slice(b".shstrtab\0");

        let mut section_places = Vec::new();
        for section in &self.sections {
            let place = match &section.content {
                SectionContent::InSegment {
                    segment,
                    offset,
                    size,
                } => {
                    let segment_offset = segment_offsets[*segment];
                    let address = self.segments[*segment].address + *offset as u64;
                    (address, segment_offset + *offset as u64, *size as u64)
                }
                SectionContent::Standalone(bytes) => {
                    while out.len() % 8 != 0 {
                        out.push(0);
                    }
                    let offset = out.len() as u64;
                    out.extend_from_slice(bytes);
                    (0, offset, bytes.len() as u64)
                }
            };
            section_places.push(place);
        }
        let shstrtab_offset = out.len() as u64;
        out.extend_from_slice(&shstrtab);
        while out.len() % 8 != 0 {
            out.push(0);
        }

        let section_count = self.sections.len() + 2;
        let shoff = out.len() as u64;
        if self.with_section_headers {
            out.extend_from_slice(&[0u8; SECTION_HEADER_SIZE]);
            for ((section, place), name) in
                self.sections.iter().zip(&section_places).zip(&name_offsets)
            {
                let (address, offset, size) = *place;
                write_section_header(
                    &mut out,
                    *name,
                    section.sh_type,
                    section.flags,
                    address,
                    offset,
                    size,
                    section.link,
                    section.info,
                    section.align,
                    section.entsize,
                );
            }
            let size = shstrtab.len() as u64;
            write_section_header(
                &mut out,
                shstrtab_name,
                elf::SHT_STRTAB,
                elf::SectionFlags(0),
                0,
                shstrtab_offset,
                size,
                0,
                0,
                1,
                0,
            );
        }

        let mut header = Vec::with_capacity(FILE_HEADER_SIZE);
        header.extend_from_slice(&[
            0x7f,
            b'E',
            b'L',
            b'F',
            elf::ELFCLASS64.0,
            elf::ELFDATA2LSB.0,
            1,
            0,
        ]);
        header.extend_from_slice(&[0u8; 8]);
        header.extend_from_slice(&self.e_type.0.to_le_bytes());
        header.extend_from_slice(&elf::EM_X86_64.0.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        header.extend_from_slice(&(FILE_HEADER_SIZE as u64).to_le_bytes());
        let (shoff, shnum, shstrndx) = if self.with_section_headers {
            (shoff, section_count as u16, (section_count - 1) as u16)
        } else {
            (0, 0, 0)
        };
        header.extend_from_slice(&shoff.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        header.extend_from_slice(&(FILE_HEADER_SIZE as u16).to_le_bytes());
        header.extend_from_slice(&(PROGRAM_HEADER_SIZE as u16).to_le_bytes());
        header.extend_from_slice(&(self.segments.len() as u16).to_le_bytes());
        header.extend_from_slice(&(SECTION_HEADER_SIZE as u16).to_le_bytes());
        header.extend_from_slice(&shnum.to_le_bytes());
        header.extend_from_slice(&shstrndx.to_le_bytes());
        out[..FILE_HEADER_SIZE].copy_from_slice(&header);

        for (index, (segment, offset)) in self.segments.iter().zip(&segment_offsets).enumerate() {
            let mut phdr = Vec::with_capacity(PROGRAM_HEADER_SIZE);
            phdr.extend_from_slice(&segment.p_type.0.to_le_bytes());
            phdr.extend_from_slice(&segment.flags.0.to_le_bytes());
            phdr.extend_from_slice(&offset.to_le_bytes());
            phdr.extend_from_slice(&segment.address.to_le_bytes());
            phdr.extend_from_slice(&segment.address.to_le_bytes());
            phdr.extend_from_slice(&(segment.bytes.len() as u64).to_le_bytes());
            phdr.extend_from_slice(&(segment.bytes.len() as u64).to_le_bytes());
            phdr.extend_from_slice(&segment.align.to_le_bytes());
            let start = FILE_HEADER_SIZE + PROGRAM_HEADER_SIZE * index;
            out[start..start + PROGRAM_HEADER_SIZE].copy_from_slice(&phdr);
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn write_section_header(
    out: &mut Vec<u8>,
    name: u32,
    sh_type: elf::SectionType,
    flags: elf::SectionFlags,
    address: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
) {
    out.extend_from_slice(&name.to_le_bytes());
    out.extend_from_slice(&sh_type.0.to_le_bytes());
    out.extend_from_slice(&flags.0.to_le_bytes());
    out.extend_from_slice(&address.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&link.to_le_bytes());
    out.extend_from_slice(&info.to_le_bytes());
    out.extend_from_slice(&align.to_le_bytes());
    out.extend_from_slice(&entsize.to_le_bytes());
}

/// Returns the smallest offset at or after `from` whose remainder modulo the
/// page size is `remainder`, as the kernel requires of `p_offset` and `p_vaddr`.
fn next_congruent(from: u64, remainder: u64) -> u64 {
    let base = from - from % PAGE_SIZE + remainder;
    if base >= from {
        base
    } else {
        base + PAGE_SIZE
    }
}

/// Encodes one ELF note with 4-byte alignment.
pub(crate) fn note(name: &[u8], n_type: elf::NoteType, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&n_type.0.to_le_bytes());
    out.extend_from_slice(name);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(desc);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}
