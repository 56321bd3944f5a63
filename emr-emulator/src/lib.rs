//! An Amazon EMR emulator on loopback, for tests and for trying the EMR provider without AWS.
//!
//! **The wire protocol is EMR's own** (awsJson1.1): `POST /` with `X-Amz-Target:
//! ElasticMapReduce.<Operation>`, JSON bodies with the member names of the EMR API (checked
//! against aws-sdk-emr 1.102's serializers), timestamps as epoch seconds, errors as HTTP 400
//! with `{"__type": "...", "message": "..."}`. A real `aws_sdk_emr::Client` talks to it. A
//! SigV4 `Authorization` header for the `elasticmapreduce` service is required but its
//! signature is not checked.
//!
//! **Operations**: RunJobFlow, DescribeCluster, ListClusters, AddJobFlowSteps, ListSteps,
//! DescribeStep, CancelSteps, TerminateJobFlows, AddTags, PutAutoTerminationPolicy,
//! GetAutoTerminationPolicy, ListInstanceFleets, ListInstances. Requests are validated as EMR does (required
//! members, enum values, ranges, list lengths) with EMR's message format ("1 validation error
//! detected: Value 'x' at 'instances.instanceFleets.1.member...' failed to satisfy constraint:
//! ..."). JobFlowRole, ServiceRole and ReleaseLabel are required here (EMR requires them in
//! practice). Lists page by 50 with an opaque `Marker`; clusters and steps come newest first.
//!
//! **Cluster life**: STARTING, then after `start_delay` WAITING (no BOOTSTRAPPING: bootstrap
//! actions are validated, not run), RUNNING while a step runs. Steps run in order, at most
//! StepConcurrencyLevel at once. Without KeepJobFlowAliveWhenNoSteps (default false, as in
//! the API) the cluster ends after its last step (ALL_STEPS_COMPLETED, "Steps completed");
//! with it, an AutoTerminationPolicy ends it after IdleTimeout seconds idle (times
//! `idle_timeout_scale`), also as ALL_STEPS_COMPLETED (EMR's exact idle code and message are
//! a guess). Every end goes through TERMINATING for `shutdown_delay`. TerminateJobFlows:
//! TERMINATED, USER_REQUEST "Terminated by user request". A failed step with ActionOnFailure
//! TERMINATE_CLUSTER / TERMINATE_JOB_FLOW: TERMINATED_WITH_ERRORS, STEP_FAILURE "Shut down as
//! step failed"; CANCEL_AND_WAIT cancels the pending steps; CONTINUE (the default here)
//! goes on. A spot loss ([`EmrEmulator::lose_cluster`]): TERMINATED_WITH_ERRORS,
//! INSTANCE_FAILURE with a message about the Spot instances of the primary and core nodes.
//! When a cluster ends, PENDING steps become CANCELLED and RUNNING ones CANCELLED (user or
//! policy) or INTERRUPTED (instance failure): what real EMR reports for a running step is
//! a guess. Fleets report PROVISIONING / RUNNING (with Provisioned = Target capacities) /
//! TERMINATING / TERMINATED. **Instances** (ListInstances): each fleet or group provisions,
//! when the cluster is asked for, instances of its *first* instance type only, as many as
//! its target capacities need at that type's WeightedCapacity (rounded up), SPOT for the
//! spot target and ON_DEMAND for the on-demand one (real EMR picks among the types by its
//! allocation strategy and may mix them). An instance lives its cluster's life: state
//! PROVISIONING / RUNNING (also while the cluster is TERMINATING) / TERMINATED, and the
//! cluster's CreationDateTime, ReadyDateTime and EndDateTime; filters by fleet id or type,
//! group id or types, and states. NormalizedInstanceHours = instances x the size factor of their
//! first instance type (large 4, xlarge 8, 2xlarge 16, ...) x started hours.
//!
//! **Steps run as local processes.** Only `command-runner.jar` is emulated (any other Jar
//! fails the step). Its Args are an argv, mapped so that a workflow written for EMR runs
//! locally, in `<work_dir>/<cluster-id>/steps/<step-id>/` (in its own process group, stdout
//! and stderr to files there):
//! - `spark-submit [options] app.py [args]` (as argv[0], or anywhere in the line of
//!   `bash -c` / `sh -c`) becomes `python3 app.py [args]`; options are dropped. A `.jar`
//!   application fails the step. An `s3://` app brings every object under its folder along
//!   (sibling modules).
//! - `hdfs:///path` and `hdfs://host[:port]/path` become `<work_dir>/<cluster-id>/hdfs/path`
//!   (parent folders created); that folder goes when the cluster ends, as HDFS does.
//! - Any other `s3://`, `s3a://` or `s3n://` URL: objects under it (as a folder) are an input,
//!   downloaded into a fresh folder that replaces the URL; a single object is downloaded as a
//!   file; nothing there makes it an output: an empty folder replaces it, and after exit 0
//!   every file in it is uploaded under the URL (like Spark's S3A committer). A failed
//!   upload fails the step. S3 I/O goes through respawn's own store code.
//!   A URL with objects under it is always taken as an input, so a step that rewrites an
//!   existing prefix uploads nothing (give every attempt a fresh output prefix).
//! - Exit 0: COMPLETED. Otherwise FAILED with FailureDetails {Reason, Message (the end of
//!   stderr), LogFile}. With a LogUri, `stdout` and `stderr` are uploaded to
//!   `<LogUri>/<cluster-id>/steps/<step-id>/` when the step ends (real EMR gzips them and
//!   uploads minutes later). Ending a cluster SIGKILLs its step process groups.
//!
//! **Not emulated**: instance groups beyond their capacities, resizing, managed scaling,
//! security configurations, bootstrap actions, applications, EMR on EKS / Serverless, IAM,
//! real Spark (no Spark configuration is applied), and any operation not listed above.
//!
//! **Spot notices** (`sqs.rs`): queues made with [`EmrEmulator::create_queue`] get what an
//! EventBridge rule on `aws.ec2` would send them: [`EmrEmulator::reclaim`] puts an "EC2
//! Instance Rebalance Recommendation" and an "EC2 Spot Instance Interruption Warning" per
//! spot instance of a cluster (EC2 ids as ListInstances gives them) on every queue and loses
//! the cluster when the lead has passed; [`EmrEmulator::recommend_rebalance`] sends only
//! the recommendation. SQS's awsJson1.0 `ReceiveMessage` (long polling up to 20 s,
//! visibility timeout, receive count) and `DeleteMessage` are served on the same endpoint
//! (`X-Amz-Target: AmazonSQS.*`, signed for `sqs`). No other SQS call, no FIFO queue, no
//! retention limit, no redrive.
//!
//! **Alerts** (`sns.rs`): SNS topics made with [`EmrEmulator::create_topic`] take
//! `Publish` in SNS's query protocol (form fields in, XML out, signed for `sns`) on the
//! same endpoint; [`EmrEmulator::published`] reads what they got and
//! [`EmrEmulator::fail_publishes`] fails the next ones with `InternalError`. No other SNS
//! call, no subscriptions.
//!
//! **Control**: [`EmrEmulator`] methods, and over HTTP `POST /_emulator/lose/<cluster-id>`,
//! `POST /_emulator/reclaim/<cluster-id>/<lead seconds>`, `POST
//! /_emulator/rebalance/<cluster-id>`, `POST /_emulator/throttle/<n>`, `GET
//! /_emulator/clusters`.
//!
//! Used by respawn's `tests/emr.rs` and `tests/emr_emulator.rs`, and by
//! `examples/emr-emulator.rs` (the emulator on its own).
//!
//! **Layout**: `emulator.rs` (the public handle and its configuration), `server.rs` (HTTP
//! and the JSON wire protocol), `operations.rs` (the operations), `validate.rs` and
//! `instances.rs` (requests checked as EMR does), `responses.rs` (the JSON of clusters,
//! fleets and steps), `cluster.rs` (a cluster's life), `steps.rs` (the step runner),
//! `storage.rs` (S3 and HDFS for steps), `spark.rs` (spark-submit rewritten to python3),
//! `shell.rs` (the tokenizer for `bash -c` lines), `sqs.rs` (queues and EC2's spot events),
//! `sns.rs` (topics and `Publish`).

mod cluster;
mod emulator;
mod instances;
mod operations;
mod reclaim;
mod responses;
mod server;
mod shell;
mod sns;
mod spark;
mod sqs;
mod steps;
mod storage;
mod tools;
mod validate;

pub use emulator::{ClusterView, EmrEmulator, EmulatorConfig, InstanceView, Request};
pub use reclaim::zone_of;
pub use sns::Published;
