//! One physical frame of a walked stack, with its source-level (inlined)
//! frames and a record of how it was found. The [`FuncTable`] here
//! symbolizes frames from a binary's pclntab at run-time addresses, shifted
//! by the load bias of a PIE.

use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::Hash;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::{FuncInfo, FuncTable};
use crate::dwarf::CSymbolizer;
use crate::hashing::FastMap;
use crate::pclntab::Pclntab;

/// How a frame's pc and sp were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameSource {
    /// The registers of a thread in the core (`NT_PRSTATUS`).
    ThreadRegisters,
    /// A parked goroutine's saved scheduler registers (`g.sched`).
    Sched,
    /// A goroutine's registers saved on syscall entry (`g.syscallpc/sp`).
    Syscall,
    /// The registers saved by a VDSO call (`m.vdsoPC/SP`).
    Vdso,
    /// The caller's return address read at a frame size from the pcsp table.
    Pcsp,
    /// A saved frame pointer chain.
    FramePointer,
    /// DWARF call frame information (`.eh_frame` or `.debug_frame`).
    Cfi,
    /// The registers the kernel saved in a signal frame's ucontext.
    SignalContext,
    /// A switch from the system stack back to the goroutine's stack
    /// (`systemstack`, `mcall`, `morestack`), using `curg.sched`.
    StackSwitch,
}

/// Which stack a frame's sp lies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackKind {
    /// The goroutine's own stack.
    Goroutine,
    /// The M's scheduler stack (`g0`).
    System,
    /// The M's signal-handling stack (`gsignal`).
    Signal,
    /// None of the known stacks (C code on a thread's own stack, or bounds unknown).
    Unknown,
}

/// Returns a function name as the runtime prints it: the type arguments of
/// a generic function, from the first `[` to the last `]`, become `[...]`
/// (`funcNamePiecesForPrint` in the runtime's `symtab.go`, Go 1.18 on), so
/// `main.Drain[go.shape.string]` prints as `main.Drain[...]`.
pub fn printed_function_name(name: &str) -> Cow<'_, str> {
    let (Some(open), Some(close)) = (name.find('['), name.rfind(']')) else {
        return Cow::Borrowed(name);
    };
    if close <= open {
        return Cow::Borrowed(name);
    }
    match (name.get(..open), name.get(close + 1..)) {
        (Some(before), Some(after)) => Cow::Owned(format!("{before}[...]{after}")),
        _ => Cow::Borrowed(name),
    }
}

/// A source-level frame: the physical function or a call inlined into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceFrame {
    /// The function name as the runtime prints it (generic type arguments
    /// shown as `[...]`, see [`printed_function_name`]).
    pub function: String,
    pub file: Option<Arc<str>>,
    pub line: Option<i64>,
    /// Whether this call was inlined into the next frame of the same pc.
    pub inlined: bool,
}

/// The source frames of one pc, innermost first. Goroutines of one program
/// share most of their pcs, so the frames of a pc are resolved once and
/// shared by every frame at that pc.
pub type SourceFrames = Arc<[SourceFrame]>;

/// One physical frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frame {
    /// The frame's pc: a return address, or the interrupted instruction for
    /// the innermost frame and for frames below a signal or an injected call.
    pub pc: u64,
    /// The pc that was symbolized: `pc - 1` for return addresses (so the
    /// line is the call's, as the runtime prints it), `pc` itself when
    /// `trapped` or at a function's entry.
    pub symbol_pc: u64,
    /// Whether `pc` is the exact instruction that was executing.
    pub trapped: bool,
    pub sp: u64,
    /// The frame's top as the runtime prints it (`fp=`): the caller's sp on
    /// amd64 and arm64. `None` where no frame size was known (C frames).
    pub fp: Option<u64>,
    /// The function's entry, when the pclntab covers `pc`.
    pub entry: Option<u64>,
    /// Innermost first; the last is the physical function. For C code
    /// (`entry` is `None`), the frames DWARF or the ELF symbol tables give.
    /// Empty for pcs nothing names.
    pub source: SourceFrames,
    pub found_by: FrameSource,
    pub stack: StackKind,
}

impl Frame {
    /// Reports whether the pclntab covers this frame's pc: Go code, which
    /// the runtime prints, as opposed to C code.
    pub fn is_go(&self) -> bool {
        self.entry.is_some()
    }

    /// The physical function's name, if known.
    pub fn function(&self) -> Option<&str> {
        self.source.last().map(|frame| frame.function.as_str())
    }

    /// The offset the runtime prints after the file and line (`+0x…`).
    pub fn offset(&self) -> Option<u64> {
        self.pc.checked_sub(self.entry?)
    }
}

/// A pclntab's functions by name at link-time addresses: entry, end and
/// flag. Built on first use, and shareable between the views of one
/// pclntab at different load biases (one per core of the binary).
#[derive(Debug, Default)]
pub struct FunctionIndex {
    by_name: OnceLock<FastMap<String, (u64, u64, u8)>>,
}

impl FunctionIndex {
    fn get(&self, table: &Pclntab<'_>) -> &FastMap<String, (u64, u64, u8)> {
        self.by_name.get_or_init(|| {
            let mut map = FastMap::default();
            for func in table.funcs().flatten() {
                if let Ok(name) = table.func_name(&func) {
                    map.entry(name.into_owned())
                        .or_insert((func.entry, func.end, func.flag));
                }
            }
            map
        })
    }
}

/// The name index a view owns or shares.
enum IndexRef<'a> {
    Owned(FunctionIndex),
    Shared(&'a FunctionIndex),
}

/// The maximum number of pcs whose source frames a [`PclntabFuncs`] keeps. Goroutines
/// of one program share most return addresses, so a few thousand entries
/// cover the corpus's 10,000-goroutine core; the cap bounds the memory of a
/// core with millions of distinct pcs.
const MAX_CACHED_PCS: usize = 1 << 16;

/// A pclntab seen at run-time addresses: `run-time = link-time + bias`.
pub struct PclntabFuncs<'a> {
    table: &'a Pclntab<'a>,
    bias: u64,
    index: IndexRef<'a>,
    /// Source frames already resolved, by run-time pc.
    source_cache: RefCell<FastMap<u64, SourceFrames>>,
    /// Functions already found, by run-time pc.
    func_cache: RefCell<FastMap<u64, Option<FuncInfo>>>,
    /// Frame sizes already decoded, by function entry and pc.
    sp_delta_cache: RefCell<FastMap<(u64, u64), Option<u64>>>,
    /// The first failed read of the table and the count of failures: a
    /// damaged pclntab makes lookups fail, which the walk treats as pcs no
    /// function covers.
    damage: RefCell<Option<(String, usize)>>,
    /// Names C code, when the caller provides the binary's DWARF and
    /// symbol tables.
    foreign: Option<CSymbolizer<'a>>,
}

impl<'a> PclntabFuncs<'a> {
    pub fn new(table: &'a Pclntab<'a>, bias: u64) -> PclntabFuncs<'a> {
        PclntabFuncs {
            table,
            bias,
            index: IndexRef::Owned(FunctionIndex::default()),
            source_cache: RefCell::default(),
            func_cache: RefCell::default(),
            sp_delta_cache: RefCell::default(),
            damage: RefCell::default(),
            foreign: None,
        }
    }

    /// Makes a view that looks names up in `index`, built once per pclntab.
    pub fn with_index(
        table: &'a Pclntab<'a>,
        bias: u64,
        index: &'a FunctionIndex,
    ) -> PclntabFuncs<'a> {
        PclntabFuncs {
            table,
            bias,
            index: IndexRef::Shared(index),
            source_cache: RefCell::default(),
            func_cache: RefCell::default(),
            sp_delta_cache: RefCell::default(),
            damage: RefCell::default(),
            foreign: None,
        }
    }

    /// Names the frames of C code with `symbolizer`, which must carry the
    /// same load bias as this view.
    pub fn with_foreign(mut self, symbolizer: CSymbolizer<'a>) -> PclntabFuncs<'a> {
        self.foreign = Some(symbolizer);
        self
    }

    fn link_pc(&self, pc: u64) -> u64 {
        pc.wrapping_sub(self.bias)
    }

    /// Returns the first failed read of a damaged table, as its error
    /// message (with the table offset and the size expected), and how many
    /// reads failed; `None` while every read succeeded.
    pub fn damage(&self) -> Option<(String, usize)> {
        self.damage.borrow().clone()
    }

    /// Adds the damage another view of the same table saw, as
    /// [`PclntabFuncs::damage`] returned it.
    pub fn add_damage(&self, other: Option<(String, usize)>) {
        let Some((error, count)) = other else {
            return;
        };
        let mut damage = self.damage.borrow_mut();
        match damage.as_mut() {
            Some((_, total)) => *total = total.saturating_add(count),
            None => *damage = Some((error, count)),
        }
    }

    /// Keeps `result`'s value, recording its error as damage.
    fn checked<T, E: std::fmt::Display>(&self, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                let mut damage = self.damage.borrow_mut();
                match damage.as_mut() {
                    Some((_, count)) => *count = count.saturating_add(1),
                    None => {
                        tracing::debug!(target: "symbolizer::unwind", %error, "the pclntab is damaged");
                        *damage = Some((error.to_string(), 1));
                    }
                }
                None
            }
        }
    }

    fn sp_delta_uncached(&self, func: &FuncInfo, pc: u64) -> Option<u64> {
        let index = self.table.find_func(self.link_pc(func.entry))?;
        let record = self.checked(self.table.func(index))?;
        let delta = self.checked(self.table.pcsp(&record, self.link_pc(pc)))??;
        u64::try_from(delta).ok()
    }

    fn resolve_source_frames(&self, pc: u64) -> SourceFrames {
        let mut frames = Vec::new();
        let resolved = self.table.resolve_inlined(self.link_pc(pc), &mut frames);
        if self.checked(resolved).is_none() {
            return SourceFrames::default();
        }
        frames
            .into_iter()
            .map(|frame| SourceFrame {
                function: printed_function_name(&frame.function).into_owned(),
                file: frame.file.map(Arc::from),
                line: frame.line.map(i64::from),
                inlined: frame.inlined,
            })
            .collect()
    }

    fn info(&self, func: &crate::pclntab::func::Func) -> Option<FuncInfo> {
        let name = self.checked(self.table.func_name(func))?;
        Some(FuncInfo {
            entry: func.entry.wrapping_add(self.bias),
            end: func.end.wrapping_add(self.bias),
            name: Arc::from(name),
            flag: func.flag,
        })
    }
}

/// Returns the value cached for `key`, or computes, caches and returns it.
/// The goroutines of one program share most pcs, so the walks look up the
/// same keys again and again. The cache stops growing at [`MAX_CACHED_PCS`].
fn cached<K: Hash + Eq, T: Clone>(
    cache: &RefCell<FastMap<K, T>>,
    key: K,
    compute: impl FnOnce() -> T,
) -> T {
    if let Some(value) = cache.borrow().get(&key) {
        return value.clone();
    }
    let value = compute();
    let mut cache = cache.borrow_mut();
    if cache.len() < MAX_CACHED_PCS {
        cache.insert(key, value.clone());
    }
    value
}

impl FuncTable for PclntabFuncs<'_> {
    fn func(&self, pc: u64) -> Option<FuncInfo> {
        cached(&self.func_cache, pc, || {
            let index = self.table.find_func(self.link_pc(pc))?;
            let func = self.checked(self.table.func(index))?;
            self.info(&func)
        })
    }

    fn sp_delta(&self, func: &FuncInfo, pc: u64) -> Option<u64> {
        cached(&self.sp_delta_cache, (func.entry, pc), || {
            self.sp_delta_uncached(func, pc)
        })
    }

    fn source_frames(&self, pc: u64) -> SourceFrames {
        cached(&self.source_cache, pc, || self.resolve_source_frames(pc))
    }

    fn foreign_frames(&self, pc: u64) -> SourceFrames {
        let Some(symbolizer) = &self.foreign else {
            return SourceFrames::default();
        };
        symbolizer
            .symbolize(pc)
            .into_iter()
            .filter_map(|frame| {
                Some(SourceFrame {
                    function: frame.function?,
                    file: frame.file.map(Arc::from),
                    line: frame.line.map(i64::from),
                    inlined: frame.inlined,
                })
            })
            .collect()
    }

    fn func_by_name(&self, name: &str) -> Option<FuncInfo> {
        let index = match &self.index {
            IndexRef::Owned(index) => index,
            IndexRef::Shared(index) => index,
        };
        let &(entry, end, flag) = index.get(self.table).get(name)?;
        Some(FuncInfo {
            entry: entry.wrapping_add(self.bias),
            end: end.wrapping_add(self.bias),
            name: Arc::from(name),
            flag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_name_hides_type_arguments() {
        assert_eq!(
            printed_function_name("main.Drain[go.shape.string]"),
            "main.Drain[...]"
        );
        assert_eq!(
            printed_function_name("main.(*Stack[go.shape.string]).Pop"),
            "main.(*Stack[...]).Pop"
        );
        assert_eq!(
            printed_function_name("main.(*Stack[...]).Pop"),
            "main.(*Stack[...]).Pop"
        );
    }

    #[test]
    fn printed_name_keeps_plain_names() {
        assert_eq!(printed_function_name("runtime.gopark"), "runtime.gopark");
        assert_eq!(printed_function_name("odd]name[x"), "odd]name[x");
    }
}
