//! Shell wildcards with Python's `fnmatch.fnmatchcase` semantics, which TMDA used.
//!
//! `*` matches any run (including `/` and `@`), `?` one character, `[seq]` one of a set
//! with ranges, `[!seq]` one not in it; a `]` first in a set is literal; a `[` with
//! no closing `]` is a literal `[`. Case-sensitive: callers lower-case.

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Any,
    One,
    Set { negated: bool, ranges: Vec<(char, char)> },
    Lit(char),
}

fn compile(pattern: &str) -> Vec<Item> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                if out.last() != Some(&Item::Any) {
                    out.push(Item::Any);
                }
                i += 1;
            }
            '?' => {
                out.push(Item::One);
                i += 1;
            }
            '[' => {
                let mut j = i + 1;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    out.push(Item::Lit('['));
                    i += 1;
                    continue;
                }
                let mut k = i + 1;
                let negated = p[k] == '!';
                if negated {
                    k += 1;
                }
                let mut ranges = vec![];
                let mut first = true;
                while k < j {
                    let c = p[k];
                    if c == ']' && !first {
                        break;
                    }
                    if k + 2 < j && p[k + 1] == '-' {
                        ranges.push((c, p[k + 2]));
                        k += 3;
                    } else {
                        ranges.push((c, c));
                        k += 1;
                    }
                    first = false;
                }
                out.push(Item::Set { negated, ranges });
                i = j + 1;
            }
            c => {
                out.push(Item::Lit(c));
                i += 1;
            }
        }
    }
    out
}

/// Does `name` match the shell-style `pattern`?
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let items = compile(pattern);
    let s: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*` (linear for typical patterns).
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < items.len() {
            match &items[pi] {
                Item::Any => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                item if si < s.len() => {
                    let ok = match item {
                        Item::One => true,
                        Item::Lit(c) => *c == s[si],
                        Item::Set { negated, ranges } => {
                            ranges.iter().any(|&(a, b)| a <= s[si] && s[si] <= b) != *negated
                        }
                        Item::Any => unreachable!(),
                    };
                    if ok {
                        si += 1;
                        pi += 1;
                        continue;
                    }
                }
                _ => {}
            }
        } else if si == s.len() {
            return true;
        }
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp + 1;
                si = ss + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn table() {
        for (name, pat, want) in [
            ("jason@example.com", "jason@example.com", true),
            ("jason@example.com", "*@example.com", true),
            ("jason@mail.example.com", "*@example.com", false),
            ("jason@mail.example.com", "*@*.example.com", true),
            ("a@b", "?@?", true),
            ("ab@b", "?@?", false),
            ("x-list@lists.org", "*-list@*", true),
            ("b", "[abc]", true),
            ("d", "[abc]", false),
            ("d", "[!abc]", true),
            ("]", "[]]", true),
            ("a", "[]a]", true),
            ("-", "[a-]", true),
            ("m", "[a-z]", true),
            ("M", "[a-z]", false),
            ("[x", "[x", true),
            ("abc", "a*b*c", true),
            ("abbbc", "a*b*c", true),
            ("ac", "a*b*c", false),
            ("", "*", true),
            ("", "", true),
            ("a", "", false),
            ("a/b", "*", true),
            ("line\nbreak", "line*", true),
            ("aaa", "***a", true),
            ("héllo", "h?llo", true),
        ] {
            assert_eq!(fnmatch(name, pat), want, "fnmatch({name:?}, {pat:?})");
        }
    }

    /// Differential check against Python's own fnmatch where python3 is available
    /// (it is on every machine this project builds on; a missing python3 fails loudly).
    #[test]
    fn agrees_with_python() {
        let cases = [
            ("a.b@c", "a.b@c"),
            ("a@example.com", "*@exam?le.[a-c]om"),
            ("x", "[!]x]"),
            ("]", "[!]]"),
            ("ab", "[a-]b"),
            ("z", "[z-a]"),
            ("a[b", "a[b"),
            ("foo@bar", "*[@]*"),
            ("a*b", "a[*]b"),
            ("a", "[!a-c]"),
            ("^", "[^a]"),
        ];
        let script =
            "import fnmatch,sys,json\nfor n,p in json.loads(sys.argv[1]): print(int(fnmatch.fnmatchcase(n,p)))";
        let json = format!(
            "[{}]",
            cases
                .iter()
                .map(|(n, p)| format!("[{n:?},{p:?}]"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let out = std::process::Command::new("python3")
            .args(["-c", script, &json])
            .output()
            .expect("python3 is required");
        assert!(out.status.success());
        let got: Vec<bool> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l == "1")
            .collect();
        for ((n, p), py) in cases.iter().zip(got) {
            assert_eq!(fnmatch(n, p), py, "fnmatch({n:?}, {p:?}) differs from Python");
        }
    }
}
