//! The argument list the Go runtime prints after a function's name in a
//! traceback, rebuilt from the same stack words.
//!
//! Since Go 1.17 (register ABI) the compiler describes each function's
//! arguments in its `FUNCDATA_ArgInfo` funcdata. That is a byte program of
//! stack offsets and sizes, relative to the frame's argument pointer (`fp`
//! plus the architecture's minimum frame size). Operators mark the start
//! and end of an aggregate (`{`, `}`), elided components (`...`) and
//! offsets too large to encode (`_`). Register arguments are printed from
//! their spill slots, which contain stale values unless the function
//! spilled them. `FUNCDATA_ArgLiveInfo` with the `PCDATA_ArgLiveIndex`
//! table marks which slots are live at a pc, and the runtime prints `?`
//! after the others. This mirrors `printArgs` in the runtime's
//! `traceback.go` (Go 1.19 to 1.27).

use symbolizer::binary::Binary;
use symbolizer::core::{Arch, Memory};
use symbolizer::hashing::FastMap;
use symbolizer::pclntab::func::{pcdata, Func};
use symbolizer::pclntab::Pclntab;
use symbolizer::unwind::Frame;

/// `abi.FUNCDATA_ArgInfo`.
const FUNCDATA_ARG_INFO: u32 = 5;
/// `abi.FUNCDATA_ArgLiveInfo`.
const FUNCDATA_ARG_LIVE_INFO: u32 = 6;
/// `abi.TraceArgsMaxLen`: `(TraceArgsMaxDepth*3+2)*TraceArgsLimit + 1`
/// with a depth of 5 and a limit of 10; the compiler never writes more.
const TRACE_ARGS_MAX_LEN: u64 = 171;
const TRACE_ARGS_END_SEQ: u8 = 0xff;
const TRACE_ARGS_START_AGG: u8 = 0xfe;
const TRACE_ARGS_END_AGG: u8 = 0xfd;
const TRACE_ARGS_DOTDOTDOT: u8 = 0xfc;
const TRACE_ARGS_OFFSET_TOO_LARGE: u8 = 0xfb;
/// The maximum number of bytes of the live-slot bitmap read for one index.
const MAX_LIVE_BITMAP: u64 = 32;

/// Reads argument words for frames of one process.
pub struct ArgPrinter<'a> {
    pclntab: Option<&'a Pclntab<'a>>,
    binary: &'a Binary,
    memory: &'a Memory,
    /// Run-time minus link-time address.
    bias: u64,
    /// `sys.MinFrameSize`: 0 on amd64, 8 on arm64 (the saved link register).
    min_frame_size: u64,
    /// Before Go 1.21 the runtime looked up liveness at the call site of
    /// the outermost inlined call instead of at the frame's pc.
    liveness_at_call_site: bool,
}

impl<'a> ArgPrinter<'a> {
    pub fn new(
        binary: &'a Binary,
        memory: &'a Memory,
        arch: Arch,
        bias: u64,
        before_go_1_21: bool,
    ) -> ArgPrinter<'a> {
        let min_frame_size = match arch {
            Arch::Amd64 => 0,
            Arch::Arm64 => 8,
        };
        ArgPrinter {
            pclntab: binary.pclntab().ok(),
            binary,
            memory,
            bias,
            min_frame_size,
            liveness_at_call_site: before_go_1_21,
        }
    }

    /// Returns the text between the parentheses for a physical frame, or
    /// `None` when the words or tables it needs cannot be read. The tables
    /// are read once per pc through `cache`: the goroutines of a program
    /// share few distinct pcs, and looking the function up was most of the
    /// work.
    pub fn args(&self, frame: &Frame, cache: &mut ArgCache<'a>) -> Option<String> {
        let layout = cache
            .layouts
            .entry((frame.pc, frame.symbol_pc))
            .or_insert_with(|| self.layout(frame));
        let items = match layout {
            Layout::Unreadable => None,
            Layout::NoArgInfo => Some(Vec::new()),
            Layout::Program { program, liveness } => self.run(frame, program, liveness),
        };
        items.map(|items| format_items(&items))
    }

    /// Reads the binary's description of the arguments at a frame's pc.
    fn layout(&self, frame: &Frame) -> Layout<'a> {
        self.read_layout(frame).unwrap_or(Layout::Unreadable)
    }

    fn read_layout(&self, frame: &Frame) -> Option<Layout<'a>> {
        let pclntab = self.pclntab?;
        let link_pc = frame.pc.checked_sub(self.bias)?;
        let func = pclntab.func(pclntab.find_func(link_pc)?).ok()?;
        let Some(info_address) = pclntab.funcdata_address(&func, FUNCDATA_ARG_INFO).ok()? else {
            return Some(Layout::NoArgInfo);
        };
        let program = self.read_link(info_address, TRACE_ARGS_MAX_LEN)?;
        let liveness = self.liveness(pclntab, &func, frame)?;
        Some(Layout::Program { program, liveness })
    }

    /// Runs an argument program on a frame's stack words.
    fn run(&self, frame: &Frame, program: &[u8], liveness: &Liveness) -> Option<Vec<ArgItem>> {
        let argp = frame.fp?.checked_add(self.min_frame_size)?;
        run_program(program, liveness, |offset| {
            self.memory
                .read_u64(argp.checked_add(u64::from(offset))?)
                .ok()
        })
    }

    fn liveness(&self, pclntab: &Pclntab<'_>, func: &Func, frame: &Frame) -> Option<Liveness> {
        let Some(live_address) = pclntab
            .funcdata_address(func, FUNCDATA_ARG_LIVE_INFO)
            .ok()?
        else {
            return Some(Liveness::all_live());
        };
        let mut pc = frame.symbol_pc.checked_sub(self.bias)?;
        if self.liveness_at_call_site {
            pc = outermost_call_site(pclntab, func, pc);
        }
        let index = pclntab
            .pcdata(func, pcdata::ARG_LIVE_INDEX, pc)
            .ok()?
            .unwrap_or(-1);
        let start_offset = *self.read_link(live_address, 1)?.first()?;
        if index <= 0 {
            return Some(Liveness {
                start_offset,
                bitmap: None,
            });
        }
        let bitmap_address = live_address.checked_add(u64::try_from(index).ok()?)?;
        let bitmap = self.read_link_up_to(bitmap_address, MAX_LIVE_BITMAP)?;
        Some(Liveness {
            start_offset,
            bitmap: Some(bitmap.to_vec()),
        })
    }

    /// Reads `len` bytes at a link-time address of the binary.
    fn read_link(&self, address: u64, len: u64) -> Option<&'a [u8]> {
        self.read_link_up_to(address, len)
    }

    /// Reads up to `len` bytes at a link-time address, fewer at the end of
    /// a segment.
    fn read_link_up_to(&self, address: u64, len: u64) -> Option<&'a [u8]> {
        let mut want = len;
        while want > 0 {
            if let Some(bytes) = self.binary.read_at_vaddr(address, want) {
                return Some(bytes);
            }
            want /= 2;
        }
        None
    }
}

/// Follows the inline tree from `pc` to the call site in the physical
/// function, as Go 1.19's traceback did before printing arguments.
fn outermost_call_site(pclntab: &Pclntab<'_>, func: &Func, pc: u64) -> u64 {
    let Ok(Some(tree)) = pclntab.inline_tree_address(func) else {
        return pc;
    };
    let mut current = pc;
    // Each step moves to an enclosing call; an inline tree deeper than the
    // limit is damaged.
    for _ in 0..symbolizer::pclntab::inline::MAX_INLINE_TREE_INDEX {
        let Ok(Some(index)) = pclntab.pcdata(func, pcdata::INLINE_TREE_INDEX, current) else {
            break;
        };
        if index < 0 {
            break;
        }
        let Ok(call) = pclntab.inlined_call(func, tree, index) else {
            break;
        };
        current = func.entry.wrapping_add(u64::from(call.parent_pc));
    }
    current
}

/// The binary's description of a function's arguments at one pc.
enum Layout<'a> {
    /// The tables could not be read.
    Unreadable,
    /// The function has no argument information: an empty list.
    NoArgInfo,
    /// The `ArgInfo` program, and which spill slots are live at the pc.
    Program {
        program: &'a [u8],
        liveness: Liveness,
    },
}

/// The argument layouts of the pcs seen so far, for
/// [`ArgPrinter::args`]. One per thread.
#[derive(Default)]
pub struct ArgCache<'a> {
    layouts: FastMap<(u64, u64), Layout<'a>>,
}

/// The argument spill slots that contain live values at a pc.
struct Liveness {
    /// Slots at offsets below this are always live.
    start_offset: u8,
    /// The bitmap of the pc's liveness index, one bit per slot; `None`
    /// when every slot counts as live.
    bitmap: Option<Vec<u8>>,
}

impl Liveness {
    fn all_live() -> Liveness {
        Liveness {
            start_offset: 0xff,
            bitmap: None,
        }
    }

    fn is_live(&self, offset: u8, slot: u8) -> bool {
        let Some(bitmap) = &self.bitmap else {
            return true;
        };
        if offset < self.start_offset {
            return true;
        }
        bitmap
            .get(usize::from(slot / 8))
            .is_none_or(|bits| bits & (1 << (slot % 8)) != 0)
    }
}

/// One element of an argument list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgItem {
    /// A word, masked to its size, and whether its spill slot is live.
    Word { value: u64, live: bool },
    /// `{`: an aggregate starts.
    StartAggregate,
    /// `}`.
    EndAggregate,
    /// `...`: components left out.
    Elided,
    /// `_`: an offset too large to encode.
    OffsetTooLarge,
}

/// Runs an `ArgInfo` program, reading each word through `read`.
fn run_program(
    program: &[u8],
    liveness: &Liveness,
    read: impl Fn(u8) -> Option<u64>,
) -> Option<Vec<ArgItem>> {
    let mut items = Vec::new();
    let mut slot: u8 = 0;
    let mut index = 0;
    loop {
        let op = *program.get(index)?;
        index += 1;
        let item = match op {
            TRACE_ARGS_END_SEQ => break,
            TRACE_ARGS_START_AGG => ArgItem::StartAggregate,
            TRACE_ARGS_END_AGG => ArgItem::EndAggregate,
            TRACE_ARGS_DOTDOTDOT => ArgItem::Elided,
            TRACE_ARGS_OFFSET_TOO_LARGE => ArgItem::OffsetTooLarge,
            offset => {
                let size = *program.get(index)?;
                index += 1;
                let mut value = read(offset)?;
                if size < 8 {
                    let shift = 64 - u32::from(size) * 8;
                    value = (value << shift) >> shift;
                }
                let live = liveness.is_live(offset, slot);
                if offset >= liveness.start_offset {
                    slot = slot.wrapping_add(1);
                }
                ArgItem::Word { value, live }
            }
        };
        items.push(item);
    }
    Some(items)
}

/// Formats argument items as the runtime's `printArgs` prints them.
fn format_items(items: &[ArgItem]) -> String {
    let mut out = String::new();
    let mut start = true;
    for item in items {
        if !start && !matches!(item, ArgItem::EndAggregate) {
            out.push_str(", ");
        }
        match item {
            ArgItem::StartAggregate => {
                out.push('{');
                start = true;
                continue;
            }
            ArgItem::EndAggregate => out.push('}'),
            ArgItem::Elided => out.push_str("..."),
            ArgItem::OffsetTooLarge => out.push('_'),
            ArgItem::Word { value, live } => {
                out.push_str(&format!("{value:#x}"));
                if !live {
                    out.push('?');
                }
            }
        }
        start = false;
    }
    out
}

#[cfg(test)]
fn format_args(
    program: &[u8],
    liveness: &Liveness,
    read: impl Fn(u8) -> Option<u64>,
) -> Option<String> {
    run_program(program, liveness, read).map(|items| format_items(&items))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an `ArgInfo` program from (offset, size) pairs and operators.
    enum Op {
        Word(u8, u8),
        Start,
        End,
        Dots,
    }

    fn program(ops: &[Op]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for op in ops {
            match op {
                Op::Word(offset, size) => bytes.extend([*offset, *size]),
                Op::Start => bytes.push(TRACE_ARGS_START_AGG),
                Op::End => bytes.push(TRACE_ARGS_END_AGG),
                Op::Dots => bytes.push(TRACE_ARGS_DOTDOTDOT),
            }
        }
        bytes.push(TRACE_ARGS_END_SEQ);
        bytes
    }

    fn words(offset: u8) -> Option<u64> {
        Some(0x1000 + u64::from(offset))
    }

    #[test]
    fn scalars_and_aggregates() {
        let ops = program(&[
            Op::Word(0, 8),
            Op::Start,
            Op::Word(8, 8),
            Op::Word(16, 8),
            Op::End,
            Op::Dots,
        ]);
        let text = format_args(&ops, &Liveness::all_live(), words).unwrap();
        assert_eq!(text, "0x1000, {0x1008, 0x1010}, ...");
    }

    #[test]
    fn empty_aggregate_prints_braces() {
        let ops = program(&[Op::Start, Op::End]);
        assert_eq!(
            format_args(&ops, &Liveness::all_live(), words).unwrap(),
            "{}"
        );
    }

    #[test]
    fn small_words_are_masked() {
        let ops = program(&[Op::Word(0, 1), Op::Word(8, 4)]);
        let text =
            format_args(&ops, &Liveness::all_live(), |_| Some(0xffff_ffff_ffff_ff42)).unwrap();
        assert_eq!(text, "0x42, 0xffffff42");
    }

    #[test]
    fn dead_spill_slots_get_question_marks() {
        // Slot 0 (offset 0) is live, slot 1 (offset 8) is not.
        let liveness = Liveness {
            start_offset: 0,
            bitmap: Some(vec![0b01]),
        };
        let ops = program(&[Op::Word(0, 8), Op::Word(8, 8)]);
        assert_eq!(
            format_args(&ops, &liveness, words).unwrap(),
            "0x1000, 0x1008?"
        );
    }

    #[test]
    fn unreadable_word_gives_none() {
        let ops = program(&[Op::Word(0, 8)]);
        assert_eq!(format_args(&ops, &Liveness::all_live(), |_| None), None);
    }

    #[test]
    fn items_keep_liveness() {
        let liveness = Liveness {
            start_offset: 0,
            bitmap: Some(vec![0b10]),
        };
        let ops = program(&[Op::Start, Op::Word(0, 8), Op::Word(8, 8), Op::End]);
        let items = run_program(&ops, &liveness, words).unwrap();
        assert_eq!(
            items,
            [
                ArgItem::StartAggregate,
                ArgItem::Word {
                    value: 0x1000,
                    live: false
                },
                ArgItem::Word {
                    value: 0x1008,
                    live: true
                },
                ArgItem::EndAggregate
            ]
        );
    }

    #[test]
    fn unterminated_program_gives_none() {
        assert_eq!(format_args(&[0, 8], &Liveness::all_live(), words), None);
    }
}
