//! Frame lines: the function line, the `file:line` line under it, and the
//! trailers of a stack (`created by`, elision markers, ancestors).
//!
//! A frame is two lines:
//!
//! ```text
//! main.(*server).serve(0xc000010000, {0x4b7e00, 0x1?})
//!         /src/app/main.go:57 +0x2f fp=0xc00004bf80 sp=0xc00004bf30 pc=0x482d4f
//! ```
//!
//! The second line is indented with one tab, which transports lose, so it is
//! recognised by its shape alone. Placing frames into stacks is left to the
//! parser.

use super::model::hex;

/// A function line split into the function and its argument text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    pub function: &'a str,
    pub args: &'a str,
}

/// The `file:line [+0xoff] [fp=... sp=... pc=...]` line of a frame, or the
/// `[file:line ]pc=0x...` line of a symbolised C frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FileLine<'a> {
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub offset: Option<u64>,
    pub fp: Option<u64>,
    pub sp: Option<u64>,
    pub pc: Option<u64>,
}

/// One argument item as `runtime.printArgs` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgValue {
    /// A word in hex. `maybe_stale` is the trailing `?` (Go 1.18+): the
    /// register spill slot may not hold the current value.
    Word { value: u64, maybe_stale: bool },
    /// `{...}`: the fields of a struct, array, string, slice or interface.
    Aggregate(Vec<ArgValue>),
    /// `...`: more words than the runtime prints.
    Ellipsis,
    /// `_`: an argument at an offset too large to encode.
    OffsetTooLarge,
}

/// Deepest `{` nesting accepted; the runtime stops at 5 levels.
const MAX_ARG_DEPTH: usize = 16;

/// Splits `FUNC(ARGS)`. The argument list is the last `(` of the line,
/// because arguments never contain parentheses while function names can
/// (`main.(*T).M`, `type:.eq.struct { F func() }`).
pub(crate) fn parse_call(line: &str) -> Option<Call<'_>> {
    let inner = line.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let function = inner.get(..open)?;
    let args = inner.get(open + 1..)?;
    let plausible_name =
        function == "panic" || (function.contains('.') && !function.starts_with(' '));
    if !plausible_name || function.ends_with(' ') {
        return None;
    }
    if args != "..." && parse_args(args).is_none() {
        return None;
    }
    Some(Call { function, args })
}

/// Parses an argument list such as `0x1, 0xffffffff?, {0x4b7e00, _}, ...`.
/// Returns `None` when the text does not follow the runtime's grammar.
pub fn parse_args(text: &str) -> Option<Vec<ArgValue>> {
    let mut rest = text;
    let values = parse_arg_list(&mut rest, 0)?;
    rest.is_empty().then_some(values)
}

fn parse_arg_list(rest: &mut &str, depth: usize) -> Option<Vec<ArgValue>> {
    let mut values = Vec::new();
    if rest.is_empty() || rest.starts_with('}') {
        return Some(values);
    }
    loop {
        values.push(parse_arg(rest, depth)?);
        match rest.strip_prefix(", ") {
            Some(after) => *rest = after,
            None => return Some(values),
        }
    }
}

fn parse_arg(rest: &mut &str, depth: usize) -> Option<ArgValue> {
    if let Some(after) = rest.strip_prefix('{') {
        if depth >= MAX_ARG_DEPTH {
            return None;
        }
        *rest = after;
        let fields = parse_arg_list(rest, depth + 1)?;
        *rest = rest.strip_prefix('}')?;
        return Some(ArgValue::Aggregate(fields));
    }
    if let Some(after) = rest.strip_prefix("...") {
        *rest = after;
        return Some(ArgValue::Ellipsis);
    }
    if let Some(after) = rest.strip_prefix('_') {
        *rest = after;
        return Some(ArgValue::OffsetTooLarge);
    }
    let digits = rest.strip_prefix("0x")?;
    let len = digits.bytes().take_while(u8::is_ascii_hexdigit).count();
    let value = hex::parse(rest.get(..len + 2)?)?;
    *rest = rest.get(len + 2..)?;
    let maybe_stale = match rest.strip_prefix('?') {
        Some(after) => {
            *rest = after;
            true
        }
        None => false,
    };
    Some(ArgValue::Word { value, maybe_stale })
}

/// Reads a frame's location line. The line number is the digits after the
/// last `:` before the optional ` +0x...` and ` fp=` parts, so Windows
/// drive letters and colons in paths stay in the file name.
pub(crate) fn parse_file_line(line: &str) -> Option<FileLine<'_>> {
    let mut location = FileLine::default();
    let mut rest = line;

    if let Some(at) = rest.rfind("pc=0x") {
        let head = rest.get(..at)?;
        if at == 0 || head.ends_with(' ') {
            location.pc = Some(hex::parse(rest.get(at + 3..)?)?);
            rest = head.trim_end();
            // fp= and sp= come before pc= on Go frames; C frames print pc= alone.
            if let Some(at) = rest.rfind(" sp=0x") {
                location.sp = Some(hex::parse(rest.get(at + 4..)?)?);
                rest = rest.get(..at)?;
                let at = rest.rfind(" fp=0x")?;
                location.fp = Some(hex::parse(rest.get(at + 4..)?)?);
                rest = rest.get(..at)?;
            }
        }
    }
    if rest.is_empty() && location.pc.is_some() {
        return Some(location);
    }
    if let Some(at) = rest.rfind(" +0x") {
        location.offset = Some(hex::parse(rest.get(at + 2..)?)?);
        rest = rest.get(..at)?;
    }
    let colon = rest.rfind(':')?;
    let digits = rest.get(colon + 1..)?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    location.line = Some(digits.parse().ok()?);
    let file = rest.get(..colon)?;
    // A space before the colon reads as prose (`listening on :8080`).
    if file.is_empty() || file.ends_with(' ') {
        return None;
    }
    location.file = Some(file);
    Some(location)
}

/// Reads `created by FUNC` and the `in goroutine N` suffix of Go 1.21+.
pub(crate) fn parse_created_by(line: &str) -> Option<(&str, Option<u64>)> {
    let rest = line.strip_prefix("created by ")?;
    if let Some(at) = rest.rfind(" in goroutine ") {
        let digits = rest.get(at + " in goroutine ".len()..)?;
        if let Ok(parent) = digits.parse::<u64>() {
            return Some((rest.get(..at)?, Some(parent)));
        }
    }
    if rest.is_empty() || rest.contains(' ') && !rest.starts_with("type:") {
        return None;
    }
    Some((rest, None))
}

/// Reads the elision markers: `...N frames elided...` (Go 1.21+) gives
/// `Some(Some(N))`, `...additional frames elided...` gives `Some(None)`.
pub(crate) fn parse_elision(line: &str) -> Option<Option<u64>> {
    if line == "...additional frames elided..." {
        return Some(None);
    }
    let count = line
        .strip_prefix("...")?
        .strip_suffix(" frames elided...")?;
    count.parse().ok().map(Some)
}

/// Reads `[originating from goroutine N]:`.
pub(crate) fn parse_ancestor(line: &str) -> Option<u64> {
    line.strip_prefix("[originating from goroutine ")?
        .strip_suffix("]:")?
        .parse()
        .ok()
}

/// Reads `non-Go function at pc=0x...`, the C frame line printed when no
/// cgo symbolizer is registered.
pub(crate) fn parse_non_go_function(line: &str) -> Option<u64> {
    hex::parse(line.strip_prefix("non-Go function at pc=")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(value: u64, maybe_stale: bool) -> ArgValue {
        ArgValue::Word { value, maybe_stale }
    }

    #[test]
    fn calls_with_receivers_and_generics() {
        assert_eq!(
            parse_call("main.(*server).serve(0xc000010000)"),
            Some(Call {
                function: "main.(*server).serve",
                args: "0xc000010000"
            })
        );
        assert_eq!(
            parse_call("main.(*Queue[...]).Wait(...)"),
            Some(Call {
                function: "main.(*Queue[...]).Wait",
                args: "..."
            })
        );
        assert_eq!(
            parse_call("main.process[...](0xc?, 0x4ea09e?)"),
            Some(Call {
                function: "main.process[...]",
                args: "0xc?, 0x4ea09e?"
            })
        );
        assert_eq!(
            parse_call("runtime.goexit({})"),
            Some(Call {
                function: "runtime.goexit",
                args: "{}"
            })
        );
        assert_eq!(
            parse_call("panic({0x5f7850?, 0x184f31790050?})")
                .unwrap()
                .function,
            "panic"
        );
        assert_eq!(
            parse_call("type:.eq.struct { F func() }(0x1)")
                .unwrap()
                .function,
            "type:.eq.struct { F func() }"
        );
    }

    #[test]
    fn non_calls() {
        assert_eq!(parse_call("starting server (pid 123)"), None);
        assert_eq!(parse_call("main.worker(0x0?, 0x"), None);
        assert_eq!(parse_call("nodots(0x1)"), None);
        assert_eq!(parse_call("goroutine 1 [running]:"), None);
        assert_eq!(parse_call("main.f (0x1)"), None);
    }

    #[test]
    fn argument_grammar() {
        assert_eq!(
            parse_args("0x1, 0xffffffff?, {0x4b7e00, 0xc000010000}"),
            Some(vec![
                word(1, false),
                word(0xffffffff, true),
                ArgValue::Aggregate(vec![word(0x4b7e00, false), word(0xc000010000, false)]),
            ])
        );
        assert_eq!(
            parse_args("{_, _, _}, {}, ..."),
            Some(vec![
                ArgValue::Aggregate(vec![ArgValue::OffsetTooLarge; 3]),
                ArgValue::Aggregate(vec![]),
                ArgValue::Ellipsis,
            ])
        );
        assert_eq!(parse_args(""), Some(vec![]));
        assert_eq!(parse_args("{{{...}}}").map(|v| v.len()), Some(1));
        assert_eq!(parse_args("0x1,0x2"), None);
        assert_eq!(parse_args("{0x1"), None);
        assert_eq!(parse_args("0x1}"), None);
        assert_eq!(parse_args("1"), None);
        assert_eq!(parse_args(&"{".repeat(MAX_ARG_DEPTH + 1)), None);
    }

    #[test]
    fn file_lines_of_every_shape() {
        let l = parse_file_line("/tmp/main.go:52 +0x7b").unwrap();
        assert_eq!(
            (l.file, l.line, l.offset),
            (Some("/tmp/main.go"), Some(52), Some(0x7b))
        );
        assert_eq!(l.pc, None);

        let l = parse_file_line("/tmp/main.go:44").unwrap();
        assert_eq!((l.line, l.offset), (Some(44), None));

        let l = parse_file_line(
            "/usr/lib/go-1.19/src/runtime/panic.go:987 +0x3ba fp=0xc00003aef8 sp=0xc00003ae38 pc=0x43137a",
        )
        .unwrap();
        assert_eq!(l.line, Some(987));
        assert_eq!(l.offset, Some(0x3ba));
        assert_eq!(
            (l.fp, l.sp, l.pc),
            (Some(0xc00003aef8), Some(0xc00003ae38), Some(0x43137a))
        );

        let l = parse_file_line("/x/ill_amd64.s:4 fp=0x10 sp=0x8 pc=0x47db40").unwrap();
        assert_eq!((l.line, l.offset, l.pc), (Some(4), None, Some(0x47db40)));

        let l = parse_file_line("C:/hostedtoolcache/go/src/runtime/panic.go:1023 +0x1").unwrap();
        assert_eq!(l.file, Some("C:/hostedtoolcache/go/src/runtime/panic.go"));

        let l = parse_file_line("/src/my app/x.go:7 +0x2").unwrap();
        assert_eq!(l.file, Some("/src/my app/x.go"));

        assert_eq!(
            parse_file_line("<autogenerated>:1").unwrap().file,
            Some("<autogenerated>")
        );
        assert_eq!(
            parse_file_line("_cgo_gotypes.go:48 +0x45").unwrap().line,
            Some(48)
        );
    }

    #[test]
    fn c_frame_location_lines() {
        let l = parse_file_line("pc=0x4a3b2c").unwrap();
        assert_eq!((l.file, l.pc), (None, Some(0x4a3b2c)));
        let l = parse_file_line("crash.c:12 pc=0x4a3b2c").unwrap();
        assert_eq!(
            (l.file, l.line, l.pc),
            (Some("crash.c"), Some(12), Some(0x4a3b2c))
        );
    }

    #[test]
    fn non_file_lines() {
        assert_eq!(parse_file_line("main.main()"), None);
        assert_eq!(parse_file_line("goroutine 1 [running]:"), None);
        assert_eq!(parse_file_line(":12"), None);
        assert_eq!(parse_file_line("listening on :8080"), None);
        assert_eq!(parse_file_line("x.go:12a"), None);
        assert_eq!(parse_file_line("x.go:12 +0xzz"), None);
        assert_eq!(parse_file_line("x.go:99999999999"), None);
        assert_eq!(parse_file_line("x.go:1 sp=0x1 pc=0x2"), None);
    }

    #[test]
    fn created_by_forms() {
        assert_eq!(
            parse_created_by("created by main.main"),
            Some(("main.main", None))
        );
        assert_eq!(
            parse_created_by("created by main.main in goroutine 1"),
            Some(("main.main", Some(1)))
        );
        assert_eq!(
            parse_created_by("created by runtime.gcenable in goroutine 1"),
            Some(("runtime.gcenable", Some(1)))
        );
        assert_eq!(parse_created_by("created by a hand"), None);
        assert_eq!(parse_created_by("created by "), None);
    }

    #[test]
    fn elision_markers() {
        assert_eq!(parse_elision("...additional frames elided..."), Some(None));
        assert_eq!(parse_elision("...51 frames elided..."), Some(Some(51)));
        assert_eq!(parse_elision("...many frames elided..."), None);
        assert_eq!(parse_elision("..."), None);
    }

    #[test]
    fn ancestor_and_c_lines() {
        assert_eq!(parse_ancestor("[originating from goroutine 7]:"), Some(7));
        assert_eq!(parse_ancestor("[originating from goroutine x]:"), None);
        assert_eq!(
            parse_non_go_function("non-Go function at pc=0x7f00aa"),
            Some(0x7f00aa)
        );
        assert_eq!(parse_non_go_function("non-Go function"), None);
    }
}
