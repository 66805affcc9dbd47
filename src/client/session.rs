//! Saved logins, one per server, in the user's config directory (file mode 0600). A lock file makes
//! a token refresh by one `rtchat` process visible to the others instead of racing them (a refresh
//! token may be used once: a second use would end the session).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::error::CliError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub username: String,
    pub user_id: i32,
    pub access_token: String,
    pub refresh_token: String,
    /// The private CA this server's certificate is checked against (`--ca-cert` at login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Credentials {
    servers: BTreeMap<String, Session>,
    /// The server of the last login or registration: used when no --server is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_server: Option<String>,
}

/// Where logins are kept: a credentials file in a directory (the CLI), or this process's memory
/// (a program or a test speaking as many users, none of whom should touch the disk).
#[derive(Debug, Clone)]
pub struct SessionStore {
    dir: PathBuf,
    memory: Option<Arc<Mutex<Credentials>>>,
}

/// Holds the store's lock until dropped.
pub struct Locked {
    _file: Option<File>,
}

impl SessionStore {
    /// `RTCHAT_CONFIG_DIR`, else the platform's config directory for rtchat.
    pub fn default_location() -> SessionStore {
        let dir = std::env::var_os("RTCHAT_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                directories::ProjectDirs::from("", "", "rtchat")
                    .map(|d| d.config_dir().to_path_buf())
            })
            .unwrap_or_else(|| PathBuf::from(".rtchat"));
        SessionStore::at(dir)
    }

    pub fn at(dir: PathBuf) -> SessionStore {
        SessionStore { dir, memory: None }
    }

    /// Logins kept in memory only, gone with the process. A refresh in one `Api` of this store is
    /// seen by its clones; nothing is shared with other processes.
    pub fn in_memory() -> SessionStore {
        SessionStore {
            dir: PathBuf::new(),
            memory: Some(Arc::default()),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("credentials.json")
    }

    fn local(&self, what: &str, e: impl std::fmt::Display) -> CliError {
        CliError::Local(format!("{what} {}: {e}", self.path().display()))
    }

    /// An exclusive lock over read-modify-write of the credentials.
    pub fn lock(&self) -> Result<Locked, CliError> {
        if self.memory.is_some() {
            // Each change to memory is made under its mutex; refreshes in one process are
            // serialised by `Api` itself.
            return Ok(Locked { _file: None });
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| self.local("cannot create the directory of", e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join("credentials.lock"))
            .map_err(|e| self.local("cannot lock", e))?;
        file.lock().map_err(|e| self.local("cannot lock", e))?;
        Ok(Locked { _file: Some(file) })
    }

    /// The credentials file as it is: missing is empty; Err inside when it cannot be parsed.
    fn load(&self) -> Result<Result<Credentials, serde_json::Error>, CliError> {
        if let Some(memory) = &self.memory {
            return Ok(Ok(memory.lock().unwrap_or_else(|e| e.into_inner()).clone()));
        }
        match fs::read_to_string(self.path()) {
            Ok(text) => Ok(serde_json::from_str(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(Credentials::default())),
            Err(e) => Err(self.local("cannot read", e)),
        }
    }

    fn read(&self) -> Result<Credentials, CliError> {
        self.load()?.map_err(|e| {
            CliError::Local(format!(
                "{} is damaged ({e}): remove it and log in again (rtchat login USERNAME)",
                self.path().display()
            ))
        })
    }

    /// The credentials, to change and write back. A damaged file is moved aside (and said so)
    /// rather than blocking the login that replaces it.
    fn read_for_update(&self) -> Result<Credentials, CliError> {
        if let Ok(creds) = self.load()? {
            return Ok(creds);
        }
        let aside = self.dir.join("credentials.json.damaged");
        fs::rename(self.path(), &aside).map_err(|e| self.local("cannot move aside", e))?;
        eprintln!(
            "rtchat: {} was damaged; kept as {} and started anew",
            self.path().display(),
            aside.display()
        );
        Ok(Credentials::default())
    }

    fn write(&self, creds: &Credentials) -> Result<(), CliError> {
        if let Some(memory) = &self.memory {
            *memory.lock().unwrap_or_else(|e| e.into_inner()) = creds.clone();
            return Ok(());
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| self.local("cannot create the directory of", e))?;
        let tmp = self.dir.join("credentials.json.tmp");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.local("cannot write", e))?;
        // An existing file keeps its old mode through open(); make sure it is private.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .and_then(|()| {
                file.write_all(
                    serde_json::to_string_pretty(creds)
                        .unwrap_or_default()
                        .as_bytes(),
                )
            })
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, self.path()))
            .map_err(|e| self.local("cannot write", e))
    }

    pub fn get(&self, server: &str) -> Result<Option<Session>, CliError> {
        Ok(self.read()?.servers.get(server).cloned())
    }

    /// Saves (or with None forgets) the session for `server`. Call with the lock held.
    pub fn put(&self, server: &str, session: Option<&Session>) -> Result<(), CliError> {
        let mut creds = self.read_for_update()?;
        match session {
            Some(s) => creds.servers.insert(server.to_string(), s.clone()),
            None => creds.servers.remove(server),
        };
        self.write(&creds)
    }

    /// Saves the session for `server` and makes it the server used when none is named. Call with
    /// the lock held.
    pub fn put_default(&self, server: &str, session: &Session) -> Result<(), CliError> {
        let mut creds = self.read_for_update()?;
        creds.servers.insert(server.to_string(), session.clone());
        creds.default_server = Some(server.to_string());
        self.write(&creds)
    }

    /// The server used when none is named: the last one logged in to (none when the file is
    /// damaged: the command then says so when it needs a login).
    pub fn default_server(&self) -> Result<Option<String>, CliError> {
        Ok(self.load()?.ok().and_then(|creds| creds.default_server))
    }

    /// Every saved login, by server.
    pub fn all(&self) -> Result<Vec<(String, Session)>, CliError> {
        Ok(self.read()?.servers.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_kept_per_server_in_a_private_file() {
        let dir = std::env::temp_dir().join(format!("rtchat-session-test-{}", std::process::id()));
        let store = SessionStore::at(dir.clone());
        let s = Session {
            username: "alice".into(),
            user_id: 1,
            access_token: "a".into(),
            refresh_token: "r".into(),
            ca_cert: None,
        };
        let _lock = store.lock().unwrap();
        store.put("http://one", Some(&s)).unwrap();
        assert_eq!(store.get("http://one").unwrap(), Some(s));
        assert_eq!(store.get("http://two").unwrap(), None);
        let mode = fs::metadata(dir.join("credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        store.put("http://one", None).unwrap();
        assert_eq!(store.get("http://one").unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
