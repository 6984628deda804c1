//! Errors from decoding a `.gopclntab`.
//!
//! Offsets are byte offsets from the start of the table (the header) unless a
//! variant says otherwise. The file name is added by the caller that knows it
//! ([`crate::binary::BinaryError`]).

/// Why part of a pclntab could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PclntabError {
    #[error("pclntab header: {found} bytes, expected at least {expected}")]
    HeaderTruncated { expected: u64, found: u64 },

    #[error("pclntab header: unknown magic 0x{found:08x} (known: 0xfffffffb, 0xfffffffa, 0xfffffff0, 0xfffffff1)")]
    BadMagic { found: u32 },

    #[error("pclntab header: {field} is 0x{found:x}, expected {expected}")]
    BadHeaderField {
        field: &'static str,
        found: u64,
        expected: &'static str,
    },

    #[error("pclntab: {structure} at offset 0x{offset:x} needs 0x{len:x} bytes but the table ends at 0x{table_len:x}")]
    OutOfRange {
        structure: &'static str,
        offset: u64,
        len: u64,
        table_len: u64,
    },

    #[error("pclntab: {count} {structure} is more than the limit of {limit}")]
    TooMany {
        structure: &'static str,
        count: u64,
        limit: u64,
    },

    #[error("pclntab function table: entry {index} at 0x{entry:x} is below the previous entry 0x{previous:x}")]
    FunctabUnsorted {
        index: u32,
        entry: u64,
        previous: u64,
    },

    #[error("pclntab function table: function {index} has entry 0x{record:x} in its _func record but 0x{functab:x} in the function table")]
    EntryMismatch {
        index: u32,
        functab: u64,
        record: u64,
    },

    #[error("pclntab: {structure} at offset 0x{offset:x} has no NUL terminator")]
    UnterminatedString {
        structure: &'static str,
        offset: u64,
    },

    #[error("pclntab header: the {later} at offset 0x{later_offset:x} starts before the {earlier}, which the linker writes first")]
    TablesOutOfOrder {
        earlier: &'static str,
        later: &'static str,
        later_offset: u64,
    },

    #[error("pclntab: the {structure} does not end with a NUL at offset 0x{offset:x}, where the header says the next table starts")]
    UnterminatedTable {
        structure: &'static str,
        offset: u64,
    },

    #[error("pclntab: the {structure} holds the control byte 0x{byte:02x} at offset 0x{offset:x}, which no Go name or path has")]
    ControlByte {
        structure: &'static str,
        offset: u64,
        byte: u8,
    },

    #[error("pclntab: {structure} at offset 0x{offset:x} does not start a string (the byte before it is not NUL)")]
    NotStringStart {
        structure: &'static str,
        offset: u64,
    },

    #[error("pclntab pc-value table at offset 0x{offset:x}: {reason}")]
    BadPcValue { offset: u64, reason: &'static str },

    #[error("pclntab: the inline tree of {function} at address 0x{address:x} is not in any loaded segment")]
    InlineTreeUnmapped { function: String, address: u64 },

    #[error(
        "pclntab: the text start is unknown (no runtime.text symbol, moduledata or header value)"
    )]
    NoTextStart,

    #[error("pclntab: address 0x{address:x} overflows")]
    AddressOverflow { address: u64 },
}

impl PclntabError {
    /// Returns an [`PclntabError::OutOfRange`] for `structure`.
    pub(crate) fn out_of_range(
        structure: &'static str,
        offset: u64,
        len: u64,
        table_len: usize,
    ) -> Self {
        PclntabError::OutOfRange {
            structure,
            offset,
            len,
            table_len: table_len as u64,
        }
    }
}
