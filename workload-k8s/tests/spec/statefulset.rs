//! The StatefulSet and headless Service of plain RunConfigs.

use super::*;

#[test]
fn stdio_server_gets_one_attachable_replica() {
    let built = built(&fixture("stdio.yaml"));
    let spec = built.statefulset.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(paths(&built.notes), ["workload.container.replicas"]);
    let c = mcp(&built.statefulset);
    assert_eq!(
        (c.stdin, c.stdin_once, c.tty),
        (Some(true), Some(false), Some(false))
    );
    assert_eq!(c.ports, None);
    assert!(workload_k8s::headless_service(&fixture("stdio.yaml"), &placement()).is_none());
}

#[test]
fn unset_replicas_are_left_to_the_cluster() {
    let built = built(&container(""));
    assert_eq!(built.statefulset.spec.unwrap().replicas, None);
    assert!(built.notes.is_empty());
}

#[test]
fn names_labels_and_selector_follow_toolhive() {
    let built = built(&fixture("full.yaml"));
    let sts = &built.statefulset;
    assert_eq!(sts.metadata.name.as_deref(), Some("fetch"));
    assert_eq!(sts.metadata.namespace.as_deref(), Some("team"));
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(spec.service_name.as_deref(), Some("fetch"));
    let selector = spec.selector.match_labels.clone().unwrap();
    assert_eq!(selector, [("app".to_owned(), "fetch".to_owned())].into());
    let labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    for (key, value) in [
        ("app", "fetch"),
        ("toolhive", "true"),
        ("toolhive-name", "fetch"),
        ("app.kubernetes.io/part-of", "mcp-platform"),
        ("team", "platform"),
    ] {
        assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
    }
    let object_labels = sts.metadata.labels.clone().unwrap();
    assert_eq!(
        object_labels.get("toolhive-name").map(String::as_str),
        Some("fetch")
    );
    assert!(
        !object_labels.contains_key("team"),
        "patch labels stay on the pod"
    );
}

#[test]
fn runconfig_labels_cannot_take_the_selector_away() {
    let built = built(&container("    labels: {app: other}"));
    let labels = built
        .statefulset
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .labels
        .unwrap();
    assert_eq!(labels["app"], "time");
    assert_eq!(paths(&built.notes), ["workload.container.labels.app"]);
}

#[test]
fn args_are_passed_as_args_never_command() {
    let built = built(&fixture("stdio.yaml"));
    let c = mcp(&built.statefulset);
    assert_eq!(c.args.as_deref(), Some(&["--read-only".to_owned()][..]));
    assert_eq!(c.command, None);
    assert_eq!(
        c.image.as_deref(),
        Some("ghcr.io/github/github-mcp-server:v0.20.1")
    );
}

#[test]
fn http_server_listens_on_its_target_port_on_all_interfaces() {
    let built = built(&fixture("full.yaml"));
    let c = mcp(&built.statefulset);
    assert_eq!(c.stdin, Some(false));
    let ports = c.ports.clone().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].container_port, 9000);
    let env = env(c);
    for (name, value) in [
        ("MCP_TRANSPORT", "streamable-http"),
        ("MCP_PORT", "9000"),
        ("FASTMCP_PORT", "9000"),
        ("MCP_HOST", "0.0.0.0"),
    ] {
        assert!(env.contains(&(name.to_owned(), value.to_owned())), "{name}");
    }
}

#[test]
fn http_port_defaults_to_8080() {
    let run = run(
        "schema_version: v1\nname: web\nworkload:\n  container: {image: a/b:1, transport: sse}\nproxy: {}\n",
    );
    let c = mcp(&built(&run).statefulset).clone();
    assert_eq!(c.ports.unwrap()[0].container_port, 8080);
    let service = workload_k8s::headless_service(&run, &placement()).unwrap();
    assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 8080);
}

#[test]
fn env_keeps_runconfig_order_then_secrets_then_transport() {
    let built = built(&fixture("stdio.yaml"));
    assert_eq!(
        env(mcp(&built.statefulset)),
        [
            ("GITHUB_TOOLSETS".to_owned(), "repos,issues".to_owned()),
            (
                "GITHUB_PERSONAL_ACCESS_TOKEN".to_owned(),
                "secret:github-token/token".to_owned()
            ),
            ("MCP_TRANSPORT".to_owned(), "stdio".to_owned()),
        ]
    );
}

#[test]
fn toolhive_transport_variables_replace_the_runconfig_values() {
    let run = run(
        "schema_version: v1\nname: web\nworkload:\n  container:\n    image: a/b:1\n    transport: sse\n    target_port: 3000\n    env: [{name: MCP_PORT, value: '1'}, {name: A, value: b}]\nproxy: {}\n",
    );
    let built = built(&run);
    let env = env(mcp(&built.statefulset));
    assert_eq!(env.iter().filter(|(n, _)| n == "MCP_PORT").count(), 1);
    assert!(env.contains(&("MCP_PORT".to_owned(), "3000".to_owned())));
    assert_eq!(paths(&built.notes), ["workload.container.env[0].name"]);
}

#[test]
fn secrets_are_referenced_never_copied() {
    let built = built(&fixture("full.yaml"));
    let c = mcp(&built.statefulset);
    let secrets: Vec<_> = c
        .env
        .iter()
        .flatten()
        .filter(|e| e.value_from.is_some())
        .collect();
    assert_eq!(secrets.len(), 2);
    for var in &secrets {
        assert_eq!(var.value, None, "{} carries no value", var.name);
    }
    let env = env(c);
    assert!(env.contains(&(
        "FETCH_API_KEY".to_owned(),
        "secret:fetch-credentials/api-key".to_owned()
    )));
    // Without target_env the variable is named after the key.
    assert!(env.contains(&(
        "PROXY_URL".to_owned(),
        "secret:fetch-credentials/PROXY_URL".to_owned()
    )));
}

#[test]
fn secret_without_key_is_refused_with_its_path() {
    let run = container("    secrets: [{name: token, target_env: TOKEN}]");
    let refused = refused(&run);
    assert_eq!(paths(&refused), ["workload.container.secrets[0].key"]);
}

#[test]
fn restricted_pod_security_by_default() {
    let built = built(&container(""));
    let pod = pod(&built.statefulset);
    let context = pod.security_context.clone().unwrap();
    assert_eq!(context.run_as_non_root, Some(true));
    assert_eq!(context.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert_eq!(context.run_as_user, Some(1000), "ToolHive's UID");
    let c = named(pod, "mcp").security_context.clone().unwrap();
    assert_eq!(c.allow_privilege_escalation, Some(false));
    assert_eq!(c.privileged, Some(false));
    assert_eq!(c.read_only_root_filesystem, Some(true));
    assert_eq!(c.run_as_non_root, Some(true));
    assert_eq!(c.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
}

#[test]
fn openshift_placement_leaves_the_uid_to_the_platform() {
    let placement = Placement {
        run_as_user: None,
        ..placement()
    };
    let built = workload_k8s::statefulset(&container(""), &placement).unwrap();
    let context = pod(&built.statefulset).security_context.clone().unwrap();
    assert_eq!((context.run_as_user, context.fs_group), (None, None));
    assert_eq!(context.run_as_non_root, Some(true));
}

#[test]
fn service_account_is_the_runconfigs() {
    let github = built(&fixture("stdio.yaml"));
    assert_eq!(
        pod(&github.statefulset).service_account_name.as_deref(),
        Some("github-sa")
    );
    let time = built(&container(""));
    assert_eq!(pod(&time.statefulset).service_account_name, None);
}

#[test]
fn owner_and_generation_come_from_the_placement() {
    let placement = Placement {
        owner: Some(workload_k8s::Owner {
            api_version: "toolhive.stacklok.dev/v1beta1".to_owned(),
            kind: "MCPServer".to_owned(),
            name: "time".to_owned(),
            uid: "0000-1111".to_owned(),
        }),
        generation: Some(4),
        ..placement()
    };
    let built = workload_k8s::statefulset(&container(""), &placement).unwrap();
    let owner = &built.statefulset.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("MCPServer", Some(true))
    );
    assert_eq!(owner.block_owner_deletion, None);
    let annotations = built.statefulset.metadata.annotations.clone().unwrap();
    assert_eq!(annotations[workload_k8s::names::GENERATION_ANNOTATION], "4");
}

#[test]
fn rotated_secret_values_roll_the_pods_through_their_checksum() {
    let template_annotation = |secrets: Option<&str>| {
        let placement = Placement {
            secrets_checksum: secrets.map(str::to_owned),
            ..placement()
        };
        let built = workload_k8s::statefulset(&fixture("stdio.yaml"), &placement).unwrap();
        let template = built.statefulset.spec.unwrap().template;
        template
            .metadata
            .unwrap()
            .annotations
            .unwrap()
            .get(workload_k8s::names::SECRETS_CHECKSUM_ANNOTATION)
            .cloned()
    };
    assert_eq!(template_annotation(None), None);
    assert_eq!(template_annotation(Some("")), None);
    let first = template_annotation(Some("aaa"));
    assert_eq!(first.as_deref(), Some("aaa"));
    assert_ne!(
        first,
        template_annotation(Some("bbb")),
        "a new value rolls the pods"
    );
}

#[test]
fn toolhives_restart_time_rolls_the_pods() {
    let placement = Placement {
        restarted_at: Some("2026-12-01T10:30:00Z".to_owned()),
        ..placement()
    };
    let built = workload_k8s::statefulset(&fixture("stdio.yaml"), &placement).unwrap();
    let annotations = built
        .statefulset
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(
        annotations[workload_k8s::names::RESTARTED_AT_ANNOTATION],
        "2026-12-01T10:30:00Z"
    );
}

#[test]
fn a_changed_image_env_or_secret_reference_changes_the_checksum() {
    let checksum = |run: &RunConfig| {
        built(run)
            .statefulset
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()[workload_k8s::names::CHECKSUM_ANNOTATION]
            .clone()
    };
    let base = checksum(&fixture("stdio.yaml"));
    assert_eq!(base, checksum(&fixture("stdio.yaml")), "stable");
    let mut image = fixture("stdio.yaml");
    let mut env = fixture("stdio.yaml");
    let mut secret = fixture("stdio.yaml");
    if let (
        runconfig::config::Workload::Container(i),
        runconfig::config::Workload::Container(e),
        runconfig::config::Workload::Container(s),
    ) = (&mut image.workload, &mut env.workload, &mut secret.workload)
    {
        i.image = "ghcr.io/github/github-mcp-server:v0.21.0".to_owned();
        e.env[0].value = "repos".to_owned();
        s.secrets[0].key = Some("token-v2".to_owned());
    }
    for changed in [image, env, secret] {
        assert_ne!(checksum(&changed), base);
    }
}

#[test]
fn headless_service_selects_the_server_pods() {
    let service = workload_k8s::headless_service(&fixture("full.yaml"), &placement()).unwrap();
    assert_eq!(service.metadata.name.as_deref(), Some("mcp-fetch-headless"));
    assert_eq!(service.metadata.namespace.as_deref(), Some("team"));
    let spec = service.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(
        spec.selector.unwrap(),
        [("app".to_owned(), "fetch".to_owned())].into()
    );
    let port = &spec.ports.unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("port-9000"), 9000));
}

#[test]
fn a_remote_workload_has_no_statefulset() {
    let run = run(
        "schema_version: v1\nname: remote\nworkload:\n  remote: {url: 'https://mcp.example.com/mcp', transport: streamable-http}\nproxy: {}\n",
    );
    assert_eq!(paths(&refused(&run)), ["workload.remote"]);
    assert!(workload_k8s::headless_service(&run, &placement()).is_none());
}
