//! The full-screen interactive mode: one line per held message (age, size, sender,
//! subject), arrow keys to move, one key per action. Used when standard input and
//! output are a terminal that is not dumb; TMDA's line prompts otherwise.

use dialoguer::console::{Key, Term, truncate_str};

use super::{Disposal, Fail, IdArg, Run, format, io_fail};
use crate::exit::Sysexit;
use crate::pending::{MessageId, PendingError};

struct Item {
    id: MessageId,
    from: String,
    subject: String,
    size: u64,
    recipient: String,
    marked: bool,
}

const HELP: &str = "↑/↓ move  space mark  r release  d delete  w whitelist+release  b blacklist+delete  s show  q quit";

pub(super) fn run(run: &mut Run, ids: Vec<IdArg>) -> Result<u8, Fail> {
    let mut cache = run.load_cache()?;
    let mut items = vec![];
    for id in ids.into_iter().filter_map(Result::ok) {
        if !run.in_age_range(id) {
            continue;
        }
        let stored = match run.open(id) {
            Ok(s) => s,
            Err(PendingError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let key = id.to_string();
        if run.cache {
            if cache.contains(&key) {
                continue;
            }
            cache.insert(0, key);
        }
        let Some(recipient) = run.recipient_of(&stored) else {
            continue;
        };
        let h = stored.header();
        let (name, address) = format::from_parts(h);
        let from = if name.is_empty() {
            address
        } else {
            format::decode_words(&name)
        };
        items.push(Item {
            id,
            from: if from.is_empty() { stored.return_path() } else { from },
            subject: h
                .get_source("Subject")
                .map(|s| format::decode_words(&s))
                .unwrap_or_default(),
            size: stored.size(),
            recipient,
            marked: false,
        });
    }
    // Messages go to the status line, not the screen's body.
    run.verbose = false;
    let term = Term::stdout();
    let result = ui(run, &term, &mut items);
    let _ = term.show_cursor();
    let _ = term.clear_screen();
    run.save_cache(cache)?;
    if let Some(t) = run.transport.as_mut() {
        t.close();
    }
    result.map(|()| run.failed.map_or(0, |c| c as u8))
}

fn ui(run: &mut Run, term: &Term, items: &mut Vec<Item>) -> Result<(), Fail> {
    let tty = |e| io_fail("the terminal")(e);
    let mut cur = 0usize;
    let mut top = 0usize;
    let mut status = String::new();
    term.hide_cursor().map_err(tty)?;
    loop {
        let (rows, cols) = term.size();
        let (rows, cols) = (rows as usize, cols as usize);
        let body = rows.saturating_sub(4).max(1);
        cur = cur.min(items.len().saturating_sub(1));
        if cur < top {
            top = cur;
        } else if cur >= top + body {
            top = cur + 1 - body;
        }
        draw(run, term, items, cur, top, body, cols, &status).map_err(tty)?;
        let key = term.read_key_raw().map_err(tty)?;
        status.clear();
        let targets: Vec<usize> = if items.iter().any(|i| i.marked) {
            (0..items.len()).filter(|&i| items[i].marked).collect()
        } else if items.is_empty() {
            vec![]
        } else {
            vec![cur]
        };
        let action = match key {
            Key::ArrowUp | Key::Char('k') => {
                cur = cur.saturating_sub(1);
                continue;
            }
            Key::ArrowDown | Key::Char('j') => {
                cur = (cur + 1).min(items.len().saturating_sub(1));
                continue;
            }
            Key::PageUp => {
                cur = cur.saturating_sub(body);
                continue;
            }
            Key::PageDown => {
                cur = (cur + body).min(items.len().saturating_sub(1));
                continue;
            }
            Key::Home => {
                cur = 0;
                continue;
            }
            Key::End => {
                cur = items.len().saturating_sub(1);
                continue;
            }
            Key::Char(' ') => {
                if let Some(i) = items.get_mut(cur) {
                    i.marked = !i.marked;
                    cur = (cur + 1).min(items.len().saturating_sub(1));
                }
                continue;
            }
            Key::Char('a') => {
                let all = items.iter().all(|i| i.marked);
                items.iter_mut().for_each(|i| i.marked = !all);
                continue;
            }
            Key::Char('q') | Key::Escape | Key::CtrlC => return Ok(()),
            Key::Char('r') => Disposal::Release,
            Key::Char('d') => Disposal::Delete,
            Key::Char('w') => Disposal::Whitelist,
            Key::Char('b') => Disposal::Blacklist,
            Key::Char('s') | Key::Enter => Disposal::Show,
            _ => continue,
        };
        if targets.is_empty() {
            continue;
        }
        if action == Disposal::Show {
            let id = items[cur].id;
            term.show_cursor().map_err(tty)?;
            term.clear_screen().map_err(tty)?;
            match run.open(id) {
                Ok(s) => run.page(&s)?,
                Err(e) => status = format!("{id}: {e}"),
            }
            term.hide_cursor().map_err(tty)?;
            continue;
        }
        let needs = match action {
            Disposal::Whitelist => run
                .inc
                .pending_whitelist_append
                .is_none()
                .then_some("PENDING_WHITELIST_APPEND"),
            Disposal::Blacklist => run
                .inc
                .pending_blacklist_append
                .is_none()
                .then_some("PENDING_BLACKLIST_APPEND"),
            _ => None,
        };
        if let Some(var) = needs {
            status = format!("set {var} in your configuration to use this key");
            continue;
        }
        let deletes = matches!(action, Disposal::Delete | Disposal::Blacklist);
        if deletes && targets.len() > 1 {
            term.move_cursor_to(0, rows.saturating_sub(1)).map_err(tty)?;
            term.clear_line().map_err(tty)?;
            term.write_str(&format!("Delete {} messages? [y/N] ", targets.len()))
                .map_err(tty)?;
            if !matches!(term.read_key_raw().map_err(tty)?, Key::Char('y' | 'Y')) {
                status = "nothing deleted".into();
                continue;
            }
        }
        let mut done = vec![];
        let mut errors = vec![];
        for &t in &targets {
            let (id, recipient) = (items[t].id, items[t].recipient.clone());
            if run.pretend {
                done.push(t);
                continue;
            }
            match act(run, action, id, &recipient) {
                Ok(()) => done.push(t),
                Err(f) => {
                    run.failed = Some(run.failed.unwrap_or(f.1));
                    errors.push(format!("{id}: {}", f.0));
                }
            }
        }
        let word = match action {
            Disposal::Release => "released",
            Disposal::Delete => "deleted",
            Disposal::Whitelist => "whitelisted and released",
            _ => "blacklisted and deleted",
        };
        status = format!(
            "{} {word}{}",
            plural(done.len()),
            if run.pretend { " (not: pretending)" } else { "" }
        );
        if let Some(e) = errors.first() {
            status = format!("{status}; failed: {e}");
        }
        if !run.pretend {
            for &t in done.iter().rev() {
                items.remove(t);
            }
        }
        items.iter_mut().for_each(|i| i.marked = false);
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

/// One key's action on one message. `w` also releases and `b` also deletes: on the
/// list, each key finishes with the message.
fn act(run: &mut Run, action: Disposal, id: MessageId, recipient: &str) -> Result<(), Fail> {
    match action {
        Disposal::Release => run.release(id, recipient),
        Disposal::Delete => run.delete(id),
        Disposal::Whitelist | Disposal::Blacklist => {
            let list = if action == Disposal::Whitelist {
                run.inc.pending_whitelist_append.clone()
            } else {
                run.inc.pending_blacklist_append.clone()
            }
            .ok_or_else(|| Fail("no list to append to".into(), Sysexit::Config))?;
            let stored = run.open(id)?;
            run.append(&list, &stored)?;
            if action == Disposal::Whitelist {
                run.release(id, recipient)
            } else {
                run.delete(id)
            }
        }
        Disposal::Pass | Disposal::Show => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn draw(
    run: &Run,
    term: &Term,
    items: &[Item],
    cur: usize,
    top: usize,
    body: usize,
    cols: usize,
    status: &str,
) -> std::io::Result<()> {
    let mut screen = String::new();
    let title = format!(
        "tmda pending: {} held{}",
        plural(items.len()),
        if run.pretend { " (pretending)" } else { "" }
    );
    screen.push_str(&truncate_str(&title, cols, "…"));
    screen.push('\n');
    screen.push_str(&truncate_str(
        "   Age     Size  From                      Subject",
        cols,
        "…",
    ));
    screen.push('\n');
    for (i, it) in items.iter().enumerate().skip(top).take(body) {
        let from: String = clean(&it.from);
        let line = format!(
            "{}{} {:>4} {:>8}  {:<24.24}  {}",
            if i == cur { '>' } else { ' ' },
            if it.marked { '*' } else { ' ' },
            format::age(it.id.age(run.now)),
            format::size(it.size),
            from,
            clean(&it.subject),
        );
        let line = truncate_str(&line, cols, "…");
        if i == cur {
            screen.push_str(&dialoguer::console::style(line).reverse().to_string());
        } else {
            screen.push_str(&line);
        }
        screen.push('\n');
    }
    if items.is_empty() {
        screen.push_str("  (no held messages)\n");
    }
    for _ in items.len().saturating_sub(top).min(body)..body {
        screen.push('\n');
    }
    screen.push_str(&truncate_str(status, cols, "…"));
    screen.push('\n');
    screen.push_str(&truncate_str(HELP, cols, "…"));
    term.clear_screen()?;
    term.write_str(&screen)
}

/// Control characters (folds, escapes a sender could plant) never reach the terminal.
fn clean(s: &str) -> String {
    let t: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}
