//! The REPL's input side: a rustyline editor on its own thread (it blocks), with tab completion of
//! commands, @people and #groups, a typing signal on every keystroke, and line history kept in the
//! user's data directory. Output from elsewhere goes above the prompt through its external printer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::{Context, Editor, ExternalPrinter, Helper, Highlighter, Validator};
use tokio::sync::mpsc;

use super::error::CliError;

/// What the person at the keyboard did.
pub enum Input {
    Line(String),
    /// A key changed the line (drives typing notifications).
    Typing,
    /// Ctrl-D.
    Eof,
}

/// Words offered by tab completion, kept current by the REPL.
pub type Completions = Arc<Mutex<Vec<String>>>;

#[derive(Helper, Highlighter, Validator)]
struct ChatHelper {
    words: Completions,
    input: mpsc::UnboundedSender<Input>,
}

impl Completer for ChatHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos].rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((start, Vec::new()));
        }
        let words = self.words.lock().unwrap_or_else(|e| e.into_inner());
        let matches = words
            .iter()
            .filter(|w| w.to_lowercase().starts_with(&word.to_lowercase()))
            .map(|w| Pair {
                display: w.clone(),
                replacement: format!("{w} "),
            })
            .collect();
        Ok((start, matches))
    }
}

/// Asked for a hint after every edit (with or without colours): the moment to say "typing".
impl Hinter for ChatHelper {
    type Hint = String;

    fn hint(&self, line: &str, _pos: usize, _: &Context<'_>) -> Option<String> {
        if !line.is_empty() && !line.starts_with('/') {
            let _ = self.input.send(Input::Typing);
        }
        None
    }
}

/// The thread that reads lines.
pub struct LineEditor {
    prompts: std::sync::mpsc::Sender<String>,
    thread: std::thread::JoinHandle<()>,
}

impl LineEditor {
    /// Starts the editor thread: each prompt given to `read` shows once and yields one `Input`.
    /// Also returns the printer that writes above the prompt.
    pub fn start(
        words: Completions,
        history: Option<PathBuf>,
        input: mpsc::UnboundedSender<Input>,
    ) -> Result<(LineEditor, Box<dyn ExternalPrinter + Send>), CliError> {
        let config = rustyline::Config::builder()
            .auto_add_history(true)
            .history_ignore_dups(true)
            .map_err(|e| CliError::Local(e.to_string()))?
            .max_history_size(1000)
            .map_err(|e| CliError::Local(e.to_string()))?
            .build();
        let mut editor: Editor<ChatHelper, FileHistory> = Editor::with_config(config)
            .map_err(|e| CliError::Local(format!("cannot use the terminal: {e}")))?;
        editor.set_helper(Some(ChatHelper {
            words,
            input: input.clone(),
        }));
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        let printer = editor
            .create_external_printer()
            .map_err(|e| CliError::Local(format!("cannot use the terminal: {e}")))?;
        let (prompts, prompt_rx) = std::sync::mpsc::channel::<String>();
        let thread = std::thread::Builder::new()
            .name("line-editor".into())
            .spawn(move || {
                while let Ok(prompt) = prompt_rx.recv() {
                    loop {
                        match editor.readline(&prompt) {
                            Ok(line) => {
                                let _ = input.send(Input::Line(line));
                                break;
                            }
                            // Ctrl-C clears the line and asks again.
                            Err(ReadlineError::Interrupted) => continue,
                            Err(_) => {
                                let _ = input.send(Input::Eof);
                                break;
                            }
                        }
                    }
                }
                if let Some(path) = &history {
                    if let Some(dir) = path.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let _ = editor.save_history(path);
                }
            })
            .map_err(|e| CliError::Local(e.to_string()))?;
        Ok((LineEditor { prompts, thread }, Box::new(printer)))
    }

    /// Shows `prompt` and reads the next line.
    pub fn read(&self, prompt: String) {
        let _ = self.prompts.send(prompt);
    }

    /// Stops reading and saves the history. Call between lines (after a line or Ctrl-D): a
    /// thread in the middle of reading one is left to end with the process.
    pub fn finish(self, between_lines: bool) {
        drop(self.prompts);
        if between_lines {
            let _ = self.thread.join();
        }
    }
}
