//! Runs the quickstart example as a user would and checks what it prints.

#[test]
fn quickstart_prints_exactly_count_records_and_exits_cleanly() {
    let output = testkit::example_command("quickstart")
        .args(["--count", "1000", "--interval", "3ms"])
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "quickstart failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1000, "exactly --count records on stdout");
    for line in &lines {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let device = record["device"].as_str().unwrap();
        assert!(["device_0", "device_1", "device_2"].contains(&device));
        let number = record["number"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&number));
        assert_eq!(
            record["level"],
            if number > 80.0 { "high" } else { "normal" }
        );
        assert!(record["time"].as_str().unwrap().ends_with('Z'));
    }
    assert!(
        stderr.contains("records/s"),
        "a progress line is shown: {stderr}"
    );
    assert!(stderr.contains("done: 1000 records"), "{stderr}");
}
