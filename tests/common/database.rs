//! The PostgreSQL the tests run on. It comes from TEST_DATABASE_URL when it is set (an admin URL:
//! each test creates its own database there). Otherwise one private PostgreSQL is started for the
//! whole test binary from the binaries on the machine, with the server's own code, and stopped when
//! the binary exits: by an atexit hook on a normal or failed run, and by the parent-death signal if
//! the process is killed.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use rtchat::server::database::db;
use rtchat::server::database::postgres::{ManagedPostgres, Options};

enum TestDatabase {
    Managed {
        pg: Mutex<Option<ManagedPostgres>>,
        dir: PathBuf,
    },
    External(tokio_postgres::Config),
}

static DATABASE: OnceLock<TestDatabase> = OnceLock::new();

extern "C" fn stop_test_postgres() {
    if let Some(TestDatabase::Managed { pg, dir }) = DATABASE.get() {
        if let Some(mut pg) = pg.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pg.stop();
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Directories of earlier runs whose process is gone (killed before its atexit hook ran).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("rtchat-test-")) else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn database() -> &'static TestDatabase {
    DATABASE.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return TestDatabase::External(db::parse_url(&url).expect("TEST_DATABASE_URL"));
        }
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("rtchat-test-{}", std::process::id()));
        let options = Options {
            fsync: false,
            max_connections: 400,
            settings: vec!["shared_preload_libraries=pg_stat_statements".into()],
        };
        let pg = ManagedPostgres::start(&dir.join("pg"), &options)
            .unwrap_or_else(|e| panic!("cannot start a test PostgreSQL: {e}"));
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(stop_test_postgres);
        }
        TestDatabase::Managed {
            pg: Mutex::new(Some(pg)),
            dir,
        }
    })
}

/// A connection configuration for the admin database (where test databases are created).
pub fn admin_config() -> tokio_postgres::Config {
    match database() {
        TestDatabase::External(cfg) => cfg.clone(),
        TestDatabase::Managed { pg, .. } => pg
            .lock()
            .unwrap()
            .as_ref()
            .expect("test PostgreSQL is running")
            .connect_config("postgres"),
    }
}
