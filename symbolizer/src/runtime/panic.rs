//! Panic and fatal error facts from a core: the chain of `runtime._panic`
//! records of the crashing goroutine, each value printed as the runtime's
//! `printpanicval` prints it, and the message of `runtime.throw`/`fatal`.
//!
//! Before printing, the runtime's `preprintpanics` replaces each value that
//! implements `error` or `fmt.Stringer` by the string its method returned,
//! so in a crash core such values are plain strings already (runtime errors
//! such as "index out of range [8] with length 3" included). Other values
//! are decoded through their type descriptor (`abi.Type`): the kind byte
//! and the type's name, an offset from the module's `types` base.

use serde::Serialize;

use super::layout::RuntimeLayout;
use super::memory::ReadMemory;

/// The most panic records followed; each nested panic adds one.
pub const MAX_PANICS: usize = 1000;
/// The longest panic string read; longer ones are cut and marked.
pub const MAX_PANIC_TEXT: u64 = 1 << 20;
/// The longest type name read.
const MAX_TYPE_NAME: u64 = 4096;

/// Offsets in `abi.Type` (the same on 64-bit targets from Go 1.14 to 1.27).
const TYPE_TFLAG: u64 = 20;
const TYPE_KIND: u64 = 23;
const TYPE_STR: u64 = 40;
/// `abi.TFlagExtraStar`: the stored name has a leading `*` to drop.
const TFLAG_EXTRA_STAR: u8 = 2;
const KIND_MASK: u8 = 0x1f;

/// One record of a goroutine's panic chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PanicRecord {
    /// The record's address (on the goroutine stack).
    pub address: u64,
    /// The value as the runtime prints it after `panic: `.
    pub value: String,
    pub recovered: bool,
    /// Whether this record is a `runtime.Goexit`, which the runtime does not print.
    pub goexit: bool,
    /// Go 1.25 on: the value was re-panicked after a recover.
    pub repanicked: bool,
}

/// Reads the type names of one module: `types` is `moduledata.types`.
#[derive(Clone, Copy, Debug)]
pub struct TypeNames {
    pub types: u64,
}

/// Reads the panic chain starting at `g._panic`, oldest first (the order
/// the runtime prints).
pub fn read_panic_chain(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    types: Option<TypeNames>,
    first: u64,
) -> Vec<PanicRecord> {
    let panic = &layout.panic;
    let mut records = Vec::new();
    let mut address = first;
    while address != 0 && records.len() < MAX_PANICS {
        let flag = |offset: Option<u64>| {
            offset
                .and_then(|o| memory.read_u8(address.wrapping_add(o)).ok())
                .unwrap_or(0)
                != 0
        };
        let Ok(type_word) = memory.read_u64(address.wrapping_add(panic.arg)) else {
            break;
        };
        let Ok(data_word) = memory.read_u64(address.wrapping_add(panic.arg + 8)) else {
            break;
        };
        records.push(PanicRecord {
            address,
            value: format_value(memory, types, type_word, data_word),
            recovered: flag(Some(panic.recovered)),
            goexit: flag(Some(panic.goexit)),
            repanicked: flag(panic.repanicked),
        });
        let Ok(link) = memory.read_u64(address.wrapping_add(panic.link)) else {
            break;
        };
        if records.iter().any(|r| r.address == link) {
            break;
        }
        address = link;
    }
    records.reverse();
    records
}

/// Formats an `any` value as the runtime's `printpanicval` does.
pub fn format_value(
    memory: &dyn ReadMemory,
    types: Option<TypeNames>,
    type_word: u64,
    data: u64,
) -> String {
    if type_word == 0 {
        return "nil".to_owned();
    }
    let kind = memory
        .read_u8(type_word.wrapping_add(TYPE_KIND))
        .map(|k| k & KIND_MASK)
        .unwrap_or(0);
    let name = types.and_then(|t| type_name(memory, t, type_word));
    let shown_name = name.clone().unwrap_or_else(|| "?".to_owned());
    let basic = match kind {
        24 => read_go_string(memory, data).map(|text| text.replace('\n', "\n\t")),
        1 => memory.read_u8(data).ok().map(|v| {
            if v != 0 {
                "true".to_owned()
            } else {
                "false".to_owned()
            }
        }),
        2 | 6 => memory.read_u64(data).ok().map(|v| (v as i64).to_string()),
        3 => memory.read_u8(data).ok().map(|v| (v as i8).to_string()),
        4 => memory
            .read_uint(data, 2)
            .ok()
            .map(|v| (v as u16 as i16).to_string()),
        5 => memory.read_u32(data).ok().map(|v| (v as i32).to_string()),
        7 | 11 | 12 => memory.read_u64(data).ok().map(|v| v.to_string()),
        8 => memory.read_u8(data).ok().map(|v| v.to_string()),
        9 => memory.read_uint(data, 2).ok().map(|v| v.to_string()),
        10 => memory.read_u32(data).ok().map(|v| v.to_string()),
        _ => None,
    };
    match (basic, name.as_deref()) {
        (Some(text), Some("string")) if kind == 24 => text,
        (Some(text), Some(n)) if kind == 24 => format!("{n}(\"{text}\")"),
        (Some(text), None) if kind == 24 => text,
        (Some(text), Some(n)) if is_predeclared(n) => text,
        (Some(text), Some(n)) => format!("{n}({text})"),
        (Some(text), None) => text,
        (None, _) => format!("({shown_name}) {data:#x}"),
    }
}

fn is_predeclared(name: &str) -> bool {
    matches!(
        name,
        "bool"
            | "int"
            | "int8"
            | "int16"
            | "int32"
            | "int64"
            | "uint"
            | "uint8"
            | "uint16"
            | "uint32"
            | "uint64"
            | "uintptr"
    )
}

/// Reads a Go string header `{data, len}` at `address`.
pub fn read_go_string(memory: &dyn ReadMemory, address: u64) -> Option<String> {
    let data = memory.read_u64(address).ok()?;
    let len = memory.read_u64(address.checked_add(8)?).ok()?;
    read_string_bytes(memory, data, len)
}

/// Reads `len` bytes of string data at `data`, cut at [`MAX_PANIC_TEXT`].
pub fn read_string_bytes(memory: &dyn ReadMemory, data: u64, len: u64) -> Option<String> {
    let mut bytes = vec![0u8; len.min(MAX_PANIC_TEXT) as usize];
    memory.read(data, &mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads a type's name: the `abi.Name` at `types + Str`, a flags byte and a
/// uvarint length before the bytes.
pub fn type_name(memory: &dyn ReadMemory, types: TypeNames, type_word: u64) -> Option<String> {
    let tflag = memory.read_u8(type_word.checked_add(TYPE_TFLAG)?).ok()?;
    let offset = memory.read_u32(type_word.checked_add(TYPE_STR)?).ok()? as i32;
    let name = types.types.checked_add_signed(i64::from(offset))?;
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut cursor = name.checked_add(1)?;
    loop {
        let byte = memory.read_u8(cursor).ok()?;
        cursor = cursor.checked_add(1)?;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
    if len == 0 || len > MAX_TYPE_NAME {
        return None;
    }
    let text = read_string_bytes(memory, cursor, len)?;
    let text = if tflag & TFLAG_EXTRA_STAR != 0 {
        text.strip_prefix('*').map(str::to_owned).unwrap_or(text)
    } else {
        text
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::TestMemory;

    const TYPES: u64 = 0x10_0000;

    fn put_type(
        memory: &mut TestMemory,
        address: u64,
        kind: u8,
        tflag: u8,
        name_offset: u32,
        name: &str,
    ) {
        memory.put(address + TYPE_TFLAG, &[tflag]);
        memory.put(address + TYPE_KIND, &[kind]);
        memory.put_u32(address + TYPE_STR, name_offset);
        let mut record = vec![1u8, name.len() as u8];
        record.extend_from_slice(name.as_bytes());
        memory.put(TYPES + u64::from(name_offset), &record);
    }

    #[test]
    fn addresses_at_the_top_of_memory_read_nothing() {
        // A damaged panic record can hold any words: none of the reads that
        // follow a type or string header may overflow.
        let memory = TestMemory::new();
        let types = Some(TypeNames {
            types: u64::MAX - 1,
        });
        for type_word in [u64::MAX, u64::MAX - 8, u64::MAX - TYPE_KIND] {
            let value = format_value(&memory, types, type_word, u64::MAX - 4);
            assert!(!value.is_empty());
        }
        assert_eq!(read_go_string(&memory, u64::MAX - 4), None);
        assert_eq!(
            type_name(&memory, TypeNames { types: u64::MAX }, u64::MAX),
            None
        );
    }

    #[test]
    fn string_value_prints_text() {
        let mut memory = TestMemory::new();
        put_type(&mut memory, 0x2000, 24, 0, 0x10, "string");
        memory.put(0x5000, b"disk\nfull");
        memory.put_u64(0x3000, 0x5000);
        memory.put_u64(0x3008, 9);
        let value = format_value(&memory, Some(TypeNames { types: TYPES }), 0x2000, 0x3000);
        assert_eq!(value, "disk\n\tfull");
    }

    #[test]
    fn named_int_prints_type_and_value() {
        let mut memory = TestMemory::new();
        put_type(
            &mut memory,
            0x2000,
            2,
            TFLAG_EXTRA_STAR,
            0x20,
            "*main.celsius",
        );
        memory.put_u64(0x3000, (-40i64) as u64);
        let value = format_value(&memory, Some(TypeNames { types: TYPES }), 0x2000, 0x3000);
        assert_eq!(value, "main.celsius(-40)");
    }

    #[test]
    fn struct_prints_type_and_address() {
        let mut memory = TestMemory::new();
        put_type(
            &mut memory,
            0x2000,
            25,
            TFLAG_EXTRA_STAR,
            0x30,
            "*main.point",
        );
        let value = format_value(
            &memory,
            Some(TypeNames { types: TYPES }),
            0x2000,
            0xc000_1000,
        );
        assert_eq!(value, "(main.point) 0xc0001000");
    }

    #[test]
    fn nil_value_prints_nil() {
        let memory = TestMemory::new();
        assert_eq!(format_value(&memory, None, 0, 0), "nil");
    }
}
