//! `StorageConfig`: PoCADuck's validation (clear errors naming the field), storage types,
//! and a `Debug` that never shows a secret.

use pocaduck_edge_query::{Error, Layout, Query, StorageConfig, StorageType};

const SECRET: &str = "s3cr3t-never-shown";

fn config_error(config: StorageConfig) -> String {
    match config.validate() {
        Err(Error::Config(message)) => {
            // Query::new refuses it the same way, before any IO.
            match Query::new(config) {
                Err(Error::Config(again)) => assert_eq!(again, message),
                other => panic!("Query::new gave {other:?}"),
            }
            message
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn s3_needs_a_region() {
    let message = config_error(StorageConfig::new("s3://bucket/data"));
    assert!(message.contains("s3_region"), "{message}");
    let ok = StorageConfig {
        s3_region: Some("us-east-1".into()),
        ..StorageConfig::new("s3://bucket/data")
    };
    assert_eq!(ok.validate().unwrap(), StorageType::S3);
}

#[test]
fn gcs_needs_a_project_and_azure_a_connection_string() {
    let message = config_error(StorageConfig::new("gs://bucket/data"));
    assert!(message.contains("gcs_project_id"), "{message}");
    let mut with_extra = StorageConfig::new("gcs://bucket/data");
    with_extra
        .extra_config
        .insert("GOOGLE_CLOUD_PROJECT".into(), "p".into());
    assert_eq!(with_extra.validate().unwrap(), StorageType::Gcs);
    let message = config_error(StorageConfig::new("az://container/data"));
    assert!(
        message.contains("azure_storage_connection_string"),
        "{message}"
    );
}

#[test]
fn vastdb_needs_its_connection_fields() {
    let full = StorageConfig::vastdb("http://127.0.0.1:9", "AK", SECRET, "bucket", "schema");
    assert_eq!(full.validate().unwrap(), StorageType::Vastdb);
    assert_eq!(full.vastdb_table, "point_clouds");
    assert_eq!(full.vastdb_layout, Layout::Pocaduck);
    assert_eq!(full.dims, 3);

    let no_bucket = StorageConfig {
        vastdb_bucket: None,
        ..full.clone()
    };
    let message = config_error(no_bucket);
    assert!(message.contains("vastdb_bucket"), "{message}");
    assert!(!message.contains("vastdb_schema"), "{message}");

    let only_endpoint = StorageConfig {
        vastdb_endpoint: Some("http://127.0.0.1:9".into()),
        ..StorageConfig::default()
    };
    let message = config_error(only_endpoint);
    for field in [
        "vastdb_access_key",
        "vastdb_secret_key",
        "vastdb_bucket",
        "vastdb_schema",
    ] {
        assert!(message.contains(field), "{message}");
    }

    let bad_endpoint = StorageConfig {
        vastdb_endpoint: Some("vast.example".into()),
        ..full.clone()
    };
    assert!(config_error(bad_endpoint).contains("vastdb_endpoint"));
    let bad_table = StorageConfig {
        vastdb_table: String::new(),
        ..full
    };
    assert!(config_error(bad_table).contains("table"));
}

#[test]
fn dims_must_be_at_least_one() {
    for config in [
        StorageConfig::new("/data/x"),
        StorageConfig::vastdb("http://127.0.0.1:9", "AK", SECRET, "b", "s"),
    ] {
        let message = config_error(StorageConfig { dims: 0, ..config });
        assert!(message.contains("dims"), "{message}");
    }
}

#[test]
fn other_bad_configs() {
    assert!(config_error(StorageConfig::default()).contains("base_path"));
    assert!(config_error(StorageConfig::new("ftp://host/x")).contains("ftp"));
    let both = StorageConfig {
        base_path: "/data/x".into(),
        ..StorageConfig::vastdb("http://127.0.0.1:9", "AK", SECRET, "b", "s")
    };
    assert!(config_error(both).contains("vastdb"));
    // An extra_config key no store knows is refused when the store is built.
    let mut typo = StorageConfig::new("http://127.0.0.1:9/data");
    typo.extra_config.insert("alow_http".into(), "true".into());
    match Query::new(typo) {
        Err(Error::Open { message, .. }) => assert!(message.contains("alow_http"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_never_shows_a_secret() {
    let mut s3 = StorageConfig {
        s3_region: Some("eu-west-1".into()),
        s3_access_key_id: Some("AKIDPUBLIC".into()),
        s3_secret_access_key: Some(SECRET.into()),
        ..StorageConfig::new("s3://bucket/data")
    };
    s3.extra_config
        .insert("s3_session_token".into(), format!("{SECRET}-token"));
    s3.extra_config
        .insert("s3_endpoint_url".into(), "http://minio.local:9000".into());
    let azure = StorageConfig {
        azure_storage_connection_string: Some(format!(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={SECRET}"
        )),
        ..StorageConfig::new("az://container/data")
    };
    let gcs = StorageConfig {
        gcs_project_id: Some("project".into()),
        gcs_credentials: Some(format!("{{\"private_key\": \"{SECRET}\"}}")),
        ..StorageConfig::new("gs://bucket/data")
    };
    let vast = StorageConfig::vastdb("http://127.0.0.1:9", "AKVAST", SECRET, "b", "s");
    let http = StorageConfig::new(format!("https://user:{SECRET}@host.example/data"));
    for config in [s3, azure, gcs, vast, http] {
        for shown in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(shown.contains("storage_type"), "{shown}");
        }
    }
    let shown = format!(
        "{:?}",
        StorageConfig::vastdb("http://127.0.0.1:9", "AKVAST", SECRET, "b", "s")
    );
    assert!(
        shown.contains("AKVAST") && shown.contains("<redacted>"),
        "{shown}"
    );
}
