//! What course-check reads in the course's sources: a handout's section
//! anchors, a test file's classic bugs, a stub's `todo!`s and the handout
//! sections their functions name.

use grader::handout::Anchors;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// The anchors of a handout's headings, as GitHub and the book make them.
pub fn section_anchors(markdown: &str) -> Vec<String> {
    let mut anchors = Anchors::default();
    let mut found = Vec::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(heading) = &mut heading {
                    heading.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(text) = heading.take() {
                    found.push(anchors.next(&text));
                }
            }
            _ => {}
        }
    }
    found
}

/// A classic bug of a lab's tests: a case of `a_classic_bug_fails_its_check`
/// (a fixture program switched to its bug by `LAB_BUG`), or of an `a_broken_…`
/// test that breaks a copy of the solution (lab 4's framing library).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicBug {
    /// The fixture program, for a case of `a_classic_bug_fails_its_check`.
    pub program: Option<String>,
    /// The bug: `LAB_BUG`'s value, or the case's name.
    pub bug: String,
    /// The check it must fail.
    pub check: String,
}

/// The classic bugs of a lab's test file: each
/// `#[case::name("program", "bug", "check", …)]` of the `#[rstest]` of
/// `a_classic_bug_fails_its_check`, and each case of an `#[rstest]` function
/// `a_broken_…` that asserts `assert_fails(&report, "check")`.
pub fn classic_bugs(tests: &str) -> Vec<ClassicBug> {
    let mut found = Vec::new();
    let mut rest = tests;
    while let Some(start) = rest.find("#[rstest]") {
        let block = &rest[start..];
        let Some(fn_at) = block.find("fn ") else {
            break;
        };
        let name: String = block[fn_at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let cases = block[..fn_at].split("#[case::").skip(1);
        let body = &block[fn_at..];
        let body = &body[..body.find("\n}").unwrap_or(body.len())];
        if name == "a_classic_bug_fails_its_check" {
            for case in cases {
                if let [program, bug, check, ..] = case_arguments(case, tests).as_slice() {
                    found.push(ClassicBug {
                        program: Some(program.clone()),
                        bug: bug.clone(),
                        check: check.clone(),
                    });
                }
            }
        } else if name.starts_with("a_broken_") {
            let asserted = body
                .split("assert_fails(&report, ")
                .nth(1)
                .and_then(|call| string_literals(call).into_iter().next());
            if let Some(check) = asserted {
                for case in cases {
                    let bug: String = case
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    found.push(ClassicBug {
                        program: None,
                        bug,
                        check: check.clone(),
                    });
                }
            }
        }
        rest = &block[fn_at..];
    }
    found
}

/// The arguments of a `#[case::name(…)]`: string literals, and constants
/// (`SERVER`) as the `const NAME: &str = "…";` of `tests` defines them.
fn case_arguments(case: &str, tests: &str) -> Vec<String> {
    let Some(open) = case.find('(') else {
        return Vec::new();
    };
    let mut arguments = Vec::new();
    let mut rest = &case[open + 1..];
    loop {
        rest = rest.trim_start();
        if let Some(literal) = rest.strip_prefix('"') {
            let Some(end) = literal.find('"') else {
                break;
            };
            arguments.push(literal[..end].to_owned());
            rest = &literal[end + 1..];
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                break;
            }
            let definition = format!("const {name}: &str = \"");
            let value = tests
                .split_once(&definition)
                .and_then(|(_, value)| value.split_once('"'))
                .map_or(name.clone(), |(value, _)| value.to_owned());
            rest = &rest[name.len()..];
            arguments.push(value);
        }
        match rest.trim_start().strip_prefix(',') {
            Some(after) => rest = after,
            None => break,
        }
    }
    arguments
}

/// The plain string literals of `text`, in order (no escapes inside).
fn string_literals(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A `todo!` of a stub and the handout sections its function's doc names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    /// 1-based line of the `todo!`.
    pub line: usize,
    /// The function it is in.
    pub function: String,
    /// The quoted sections after `Handout:` in the function's doc comment.
    pub sections: Vec<String>,
}

/// Every `todo!` of a stub's source with the sections its function's doc
/// comment names (`/// Handout: "Step 1: …" and "Why write_all".`).
pub fn todos(source: &str) -> Vec<Todo> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if !line.contains("todo!(") || line.trim_start().starts_with("//") {
            continue;
        }
        // The function the `todo!` is in: the nearest `fn` line above.
        let Some(fn_line) = (0..=index).rev().find(|&i| is_fn_line(lines[i])) else {
            continue;
        };
        let function = lines[fn_line]
            .split("fn ")
            .nth(1)
            .unwrap_or("")
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("")
            .to_owned();
        // Its doc comment: the `///` lines above it, attributes skipped.
        let mut doc = Vec::new();
        for above in lines[..fn_line].iter().rev() {
            let above = above.trim_start();
            if let Some(text) = above.strip_prefix("///") {
                doc.push(text.trim());
            } else if !above.starts_with("#[") {
                break;
            }
        }
        doc.reverse();
        found.push(Todo {
            line: index + 1,
            function,
            sections: handout_sections(&doc),
        });
    }
    found
}

fn is_fn_line(line: &str) -> bool {
    let line = line.trim_start();
    !line.starts_with("//")
        && (line.starts_with("fn ") || line.contains(" fn ") || line.starts_with("pub fn "))
}

/// The quoted sections of a doc comment's `Handout:` paragraph.
fn handout_sections(doc: &[&str]) -> Vec<String> {
    let Some(start) = doc.iter().position(|line| line.starts_with("Handout:")) else {
        return Vec::new();
    };
    let paragraph: Vec<&str> = doc[start..]
        .iter()
        .take_while(|line| !line.is_empty())
        .copied()
        .collect();
    string_literals(&paragraph.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn todos_read_sections_over_several_lines() {
        let source = "/// Does it.\n///\n/// Handout: \"Step 1: one\" and \"Step 3: one client\n/// after another\".\n#[allow(dead_code)]\nfn serve() {\n    todo!(\"x\")\n}\n";
        assert_eq!(
            todos(source),
            [Todo {
                line: 7,
                function: "serve".into(),
                sections: vec![
                    "Step 1: one".into(),
                    "Step 3: one client after another".into()
                ],
            }]
        );
    }

    #[test]
    fn classic_bugs_are_read_from_the_cases() {
        let tests = "const SRV: &str = \"srv\";\n#[rstest]\n#[case::a(SRV, \"bug\", \"x.one\", \"#s\")]\n#[case::b(\n    \"cli\",\n    \"other\",\n    \"x.two\",\n    \"#t\"\n)]\nfn a_classic_bug_fails_its_check(\n";
        let bugs = classic_bugs(tests);
        assert_eq!(bugs.len(), 2);
        assert_eq!(bugs[1].program.as_deref(), Some("cli"));
        assert_eq!(bugs[1].check, "x.two");
        let broken = "#[rstest]\n#[case::little_endian(\"a\", \"b\")]\nfn a_broken_library_fails(\n    #[case] a: &str,\n) {\n    assert_fails(&report, \"x.lib\");\n}\n";
        assert_eq!(
            classic_bugs(broken),
            [ClassicBug {
                program: None,
                bug: "little_endian".into(),
                check: "x.lib".into(),
            }]
        );
    }
}
