/**
 * The types of the Lepton Lab REST API, generated from its OpenAPI document
 * by `npm run gen:types` (scripts/gen-types.mjs). Do not edit by hand.
 */
export interface paths {
  '/lepton-lab/api/cluster': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Status of the lab's Dask cluster */
    get: operations['getCluster'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    /** Scale the lab-owned cluster to a number of workers (waits until reached; turns adaptive scaling off), or turn Dask's adaptive scaling on with 'adapt' */
    patch: operations['scaleCluster'];
    trace?: never;
  };
  '/lepton-lab/api/kernels': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The CPU and GPU kernelspecs and whether a GPU is there */
    get: operations['getKernels'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/config': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Installed job executors and features of this lab */
    get: operations['getConfig'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/runs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Runs, newest first, with their progress */
    get: operations['listRuns'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/runs/{run_id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One run with its usage per rank and its events */
    get: operations['getRun'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/runs/{run_id}/metrics': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Reported values after a cursor; poll again with the returned `next` */
    get: operations['getRunMetrics'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/runs/{run_id}/stop': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Ask the run's ranks to stop at their next report */
    post: operations['stopRun'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/jobs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Notebook jobs, newest first */
    get: operations['listJobs'];
    put?: never;
    /** Run a notebook with papermill (validated before anything is stored) */
    post: operations['submitJob'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/jobs/{job_id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One job with its events, metrics and progress */
    get: operations['getJob'];
    put?: never;
    post?: never;
    /** Remove an ended job and its files */
    delete: operations['deleteJob'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/jobs/{job_id}/stop': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Stop a job: a queued one at once, a running one with its kernel */
    post: operations['stopJob'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/jobs/{job_id}/logs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The job's log from byte `offset`; poll with `next` until `complete` */
    get: operations['getJobLogs'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/jobs/{job_id}/output': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The executed notebook (`format=ipynb`) or its HTML (`format=html`) */
    get: operations['getJobOutput'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/schedules': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Schedules */
    get: operations['listSchedules'];
    put?: never;
    /** Run a notebook on a cron schedule */
    post: operations['createSchedule'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/schedules/{schedule_id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One schedule with its next fire times */
    get: operations['getSchedule'];
    put?: never;
    post?: never;
    /** Delete a schedule (its jobs stay) */
    delete: operations['deleteSchedule'];
    options?: never;
    head?: never;
    /** Edit a schedule; `active: false` pauses it, `true` resumes it */
    patch: operations['updateSchedule'];
    trace?: never;
  };
  '/lepton-lab/api/schedules/{schedule_id}/run': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Run a schedule's notebook now */
    post: operations['runSchedule'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/models': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Registered models: newest version, aliases, metrics */
    get: operations['listModels'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/models/{name}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** A model with all its versions, newest first */
    get: operations['getModel'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/models/{name}/compare': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The versions side by side, best first by `metric` */
    get: operations['compareModel'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/models/{name}/versions/{version}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One version: lineage, artifacts, evaluations (`version`: a number, `latest`, `@alias` or `best:<metric>`) */
    get: operations['getModelVersion'];
    put?: never;
    post?: never;
    /** Delete a version: its artifacts and rows together */
    delete: operations['deleteModelVersion'];
    options?: never;
    head?: never;
    /** Set the aliases that point at this version (moved from others) and merge tags */
    patch: operations['patchModelVersion'];
    trace?: never;
  };
  '/lepton-lab/api/models/{name}/versions/{version}/artifacts/{format}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Download one artifact (a SavedModel folder as .zip); its digest is checked first */
    get: operations['downloadModelArtifact'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/deployments': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Deployments, newest first, with their endpoint and proxied URL */
    get: operations['listDeployments'];
    put?: never;
    /** Serve a registered version over the Open Inference Protocol (a supervised MLServer process; `starting`, then `ready` or `failed`) */
    post: operations['createDeployment'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/deployments/{deployment_id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One deployment and where its endpoint answers */
    get: operations['getDeployment'];
    put?: never;
    post?: never;
    /** Stop a deployment (its ports are free once it is `stopped`) */
    delete: operations['stopDeployment'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/deployments/{deployment_id}/logs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The model server's log from byte `offset`; poll with `next` until `complete` */
    get: operations['getDeploymentLogs'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/notifications': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The notification log, newest first (`since`: the ones after an id, oldest first; `mine`: the caller's) */
    get: operations['listNotifications'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/usage': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Usage over a window (`from`, `to`), grouped by day, user, notebook, tag or kind; priced when the lab has prices */
    get: operations['getUsage'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/usage/csv': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The same report as CSV: a line per group, then the total */
    get: operations['getUsageCSV'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/lepton-lab/api/openapi.json': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** This document */
    get: operations['getOpenAPI'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    /**
     * AdaptRequest
     * @description Dask's adaptive scaling between ``minimum`` and ``maximum`` workers.
     */
    AdaptRequest: {
      /**
       * Minimum
       * @description workers kept when idle
       * @default 0
       */
      minimum?: number;
      /**
       * Maximum
       * @description workers at most; at most the server's max_workers
       */
      maximum: number;
    };
    /** AdaptStatus */
    AdaptStatus: {
      /** Minimum */
      minimum: number;
      /** Maximum */
      maximum: number;
      /**
       * Requested
       * @default 0
       */
      requested?: number;
    };
    /**
     * Artifact
     * @description One exported format of a version: where it is, its digest, and how well it matched.
     */
    Artifact: {
      /** Format */
      format: string;
      /**
       * File
       * @description the file (or folder, for SavedModel) name
       */
      file: string;
      /**
       * Uri
       * @description where the artifact is stored (a path or fsspec URL)
       */
      uri: string;
      /** Sha256 */
      sha256: string;
      /** Size */
      size: number;
      /**
       * Max Abs Diff
       * @description largest |reloaded - original| output difference on the check input
       * @default null
       */
      max_abs_diff?: number | null;
      /**
       * Tolerance
       * @default null
       */
      tolerance?: number | null;
      /**
       * Details
       * @description format-specific results, e.g. onnx-int8's accuracy change
       * @default {}
       */
      details?: {
        [key: string]: unknown;
      };
    };
    /** ClusterEvent */
    ClusterEvent: {
      /** Time */
      time: number;
      /**
       * Action
       * @enum {string}
       */
      action: 'add-worker' | 'remove-worker';
      /**
       * Worker
       * @default null
       */
      worker?: string | null;
      /**
       * Reason
       * @default null
       */
      reason?: string | null;
    };
    /**
     * ClusterStatus
     * @description What the lab's cluster is, where, and how loaded.
     */
    ClusterStatus: {
      /**
       * Mode
       * @default null
       */
      mode?: ('local' | 'cuda' | 'factory' | 'external') | null;
      /** Requested Mode */
      requested_mode: string;
      /**
       * Reason
       * @default null
       */
      reason?: string | null;
      /**
       * Status
       * @enum {string}
       */
      status:
        'stopped' | 'starting' | 'running' | 'error' | 'closed' | 'unreachable';
      /**
       * Error
       * @default null
       */
      error?: string | null;
      /** Owned */
      owned: boolean;
      /**
       * Cluster Class
       * @description the Dask cluster class the lab runs, e.g. distributed.LocalCluster
       * @default null
       */
      cluster_class?: string | null;
      /**
       * @description adaptive scaling, when it is on
       * @default null
       */
      adapt?: components['schemas']['AdaptStatus'] | null;
      /**
       * Scheduler Address
       * @default null
       */
      scheduler_address?: string | null;
      /**
       * Dashboard Link
       * @default null
       */
      dashboard_link?: string | null;
      /**
       * Startup Seconds
       * @default null
       */
      startup_seconds?: number | null;
      /** Max Workers */
      max_workers: number;
      /**
       * Workers
       * @default []
       */
      workers?: components['schemas']['Worker'][];
      /**
       * @default {
       *       "workers": 0,
       *       "threads": 0,
       *       "memory_limit": 0,
       *       "memory_used": 0,
       *       "gpus": 0
       *     }
       */
      totals?: components['schemas']['ClusterTotals'];
      /**
       * Events
       * @default []
       */
      events?: components['schemas']['ClusterEvent'][];
    };
    /** ClusterTotals */
    ClusterTotals: {
      /**
       * Workers
       * @default 0
       */
      workers?: number;
      /**
       * Threads
       * @default 0
       */
      threads?: number;
      /**
       * Memory Limit
       * @default 0
       */
      memory_limit?: number;
      /**
       * Memory Used
       * @default 0
       */
      memory_used?: number;
      /**
       * Gpus
       * @default 0
       */
      gpus?: number;
    };
    /** Comparison */
    Comparison: {
      /** Name */
      name: string;
      /**
       * Metric
       * @default null
       */
      metric?: string | null;
      /** Columns */
      columns: string[];
      /** Rows */
      rows: {
        [key: string]: unknown;
      }[];
    };
    /**
     * Deployment
     * @description A served model version and where its endpoint answers.
     */
    Deployment: {
      /** Id */
      id: string;
      /**
       * Model
       * @description the model name, as the endpoint serves it
       */
      model: string;
      /** Version */
      version: number;
      /**
       * Ref
       * @description what was asked for, e.g. `digits@production`
       */
      ref: string;
      /** Format */
      format: string;
      /**
       * Status
       * @enum {string}
       */
      status: 'starting' | 'ready' | 'failed' | 'stopped';
      /**
       * Error
       * @default null
       */
      error?: string | null;
      /** Host */
      host: string;
      /**
       * Port
       * @default null
       */
      port?: number | null;
      /**
       * Url
       * @description the endpoint on this machine, e.g. `http://127.0.0.1:8500`
       * @default null
       */
      url?: string | null;
      /**
       * Proxy Path
       * @description the endpoint under the Jupyter server's URL (relative to its base URL), e.g. `proxy/8500/`; it needs the same authentication as the Jupyter server
       * @default null
       */
      proxy_path?: string | null;
      /** Workers */
      workers: number;
      /** Max Batch Size */
      max_batch_size: number;
      /** Max Batch Delay Ms */
      max_batch_delay_ms: number;
      /** Max Request Bytes */
      max_request_bytes: number;
      /**
       * Restarts
       * @default 0
       */
      restarts?: number;
      /** Max Restarts */
      max_restarts: number;
      /**
       * Owner
       * @description who supervises it: `server`, `cli` or `kernel`
       */
      owner: string;
      /**
       * Pid
       * @description the model server's process id while it runs
       * @default null
       */
      pid?: number | null;
      /** Created At */
      created_at: number;
      /**
       * Ready At
       * @default null
       */
      ready_at?: number | null;
      /**
       * Ended At
       * @default null
       */
      ended_at?: number | null;
      /**
       * Stop Requested
       * @default false
       */
      stop_requested?: boolean;
    };
    /** DeploymentList */
    DeploymentList: {
      /** Deployments */
      deployments: components['schemas']['Deployment'][];
    };
    /** DeploymentLogs */
    DeploymentLogs: {
      /** Id */
      id: string;
      /** Offset */
      offset: number;
      /**
       * Next
       * @description the offset to poll with next
       */
      next: number;
      /** Text */
      text: string;
      /**
       * Complete
       * @description the deployment has ended: nothing more will be written
       */
      complete: boolean;
    };
    /**
     * DeploymentRequest
     * @description ``POST /deployments``: serve one version of a registered model.
     */
    DeploymentRequest: {
      /**
       * Model
       * @description `name@alias`, `name:version` or `name` (its latest version)
       */
      model: string;
      /**
       * Format
       * @description the artifact to serve; default: onnx when the version has it
       * @default null
       */
      format?:
        | ('onnx' | 'onnx-int8' | 'torch.export' | 'torchscript' | 'keras')
        | null;
      /**
       * Host
       * @description where the endpoint listens; the lab proxies it under its own URL either way
       * @default 127.0.0.1
       * @enum {string}
       */
      host?: '127.0.0.1' | 'localhost' | '::1' | '0.0.0.0' | '::';
      /**
       * Port
       * @description default: a free port chosen at start
       * @default null
       */
      port?: number | null;
      /**
       * Workers
       * @description inference worker processes (0: inference in the server's own process)
       * @default 0
       */
      workers?: number;
      /**
       * Max Batch Size
       * @description adaptive batching: the most requests in one batch
       * @default 32
       */
      max_batch_size?: number;
      /**
       * Max Batch Delay Ms
       * @description adaptive batching: how long a request may wait for others (0: no batching)
       * @default 5
       */
      max_batch_delay_ms?: number;
      /**
       * Max Request Bytes
       * @description a request body larger than this is refused with 413
       * @default 16777216
       */
      max_request_bytes?: number;
      /**
       * Max Restarts
       * @description restarts after a crash before the deployment fails
       * @default 3
       */
      max_restarts?: number;
    };
    /**
     * Error
     * @description Every 4xx answer: what was wrong, in words.
     */
    Error: {
      /** Message */
      message: string;
      /**
       * Reason
       * @default null
       */
      reason?: string | null;
    };
    /**
     * Evaluation
     * @description Metrics measured on a version, by an evaluation notebook or ``log_evaluation``.
     */
    Evaluation: {
      /** Id */
      id: number;
      /** Time */
      time: number;
      /**
       * Dataset
       * @default
       */
      dataset?: string;
      /**
       * Job Id
       * @default null
       */
      job_id?: string | null;
      /**
       * Metrics
       * @default {}
       */
      metrics?: {
        [key: string]: number;
      };
    };
    /** ExecutorInfo */
    ExecutorInfo: {
      /** Name */
      name: string;
      /** Description */
      description: string;
    };
    /** GitState */
    GitState: {
      /** Commit */
      commit: string;
      /** Dirty */
      dirty: boolean;
      /**
       * Branch
       * @default null
       */
      branch?: string | null;
    };
    /** Job */
    Job: {
      /** Id */
      id: string;
      /** Name */
      name: string;
      /**
       * Path
       * @description the notebook, relative to the server root
       * @default null
       */
      path?: string | null;
      /** Notebook */
      notebook: string;
      /** Cwd */
      cwd: string;
      /** Parameters */
      parameters: {
        [key: string]: unknown;
      };
      /** Kernel */
      kernel: string;
      /** Executor */
      executor: string;
      /**
       * Timeout
       * @default null
       */
      timeout?: number | null;
      /** Retries */
      retries: number;
      /** Tags */
      tags: string[];
      /** Output Formats */
      output_formats: string[];
      /**
       * Secret Names
       * @description names of the job's secrets (never values)
       * @default []
       */
      secret_names?: string[];
      /**
       * Notify
       * @description its notification rules, as shown (a webhook by its host only)
       * @default []
       */
      notify?: components['schemas']['NotifyRuleView'][];
      /** Created At */
      created_at: number;
      /** Output Dir */
      output_dir: string;
      /** Retry Backoff */
      retry_backoff: number;
      /**
       * Outputs
       * @description the outputs written so far (GET .../output?format=)
       * @default []
       */
      outputs?: ('ipynb' | 'html')[];
      /** Warnings */
      warnings: string[];
      /**
       * Schedule Id
       * @default null
       */
      schedule_id?: string | null;
      /**
       * Status
       * @enum {string}
       */
      status:
        'queued' | 'running' | 'completed' | 'failed' | 'stopped' | 'timed_out';
      /** Attempt */
      attempt: number;
      /**
       * Not Before
       * @default 0
       */
      not_before?: number;
      /**
       * Owner
       * @default null
       */
      owner?: string | null;
      /**
       * Runner Pid
       * @default null
       */
      runner_pid?: number | null;
      /**
       * Heartbeat At
       * @default null
       */
      heartbeat_at?: number | null;
      /** Stop Requested */
      stop_requested: boolean;
      /**
       * Progress
       * @description cells, cell (1-based, running), completed, source, started_at, cell_started_at, cell_elapsed; cells are the executed notebook's, papermill's injected-parameters cell included
       * @default {}
       */
      progress?: {
        [key: string]: unknown;
      };
      /**
       * Started At
       * @default null
       */
      started_at?: number | null;
      /**
       * Ended At
       * @default null
       */
      ended_at?: number | null;
      /**
       * Elapsed
       * @description seconds of the current (or last) attempt
       * @default null
       */
      elapsed?: number | null;
      /**
       * Error
       * @default null
       */
      error?: string | null;
      /**
       * Error Cell
       * @default null
       */
      error_cell?: number | null;
      /**
       * Events
       * @default null
       */
      events?: components['schemas']['JobEvent'][] | null;
      /**
       * Metrics
       * @default null
       */
      metrics?: components['schemas']['JobMetric'][] | null;
      /**
       * Models
       * @description the model versions this job registered
       * @default []
       */
      models?: components['schemas']['ModelRef'][];
    };
    /** JobEvent */
    JobEvent: {
      /** Time */
      time: number;
      /** Status */
      status: string;
      /** Attempt */
      attempt: number;
      /** Message */
      message: string;
    };
    /** JobList */
    JobList: {
      /** Jobs */
      jobs: components['schemas']['Job'][];
    };
    /** JobLogs */
    JobLogs: {
      /** Id */
      id: string;
      /**
       * Status
       * @enum {string}
       */
      status:
        'queued' | 'running' | 'completed' | 'failed' | 'stopped' | 'timed_out';
      /** Offset */
      offset: number;
      /**
       * Next
       * @description the offset to ask for next
       */
      next: number;
      /** Size */
      size: number;
      /** Text */
      text: string;
      /**
       * Complete
       * @description the job has ended and all of its log is read
       */
      complete: boolean;
    };
    /** JobMetric */
    JobMetric: {
      /** Name */
      name: string;
      /** Value */
      value: number;
      /** Time */
      time: number;
      /** Attempt */
      attempt: number;
    };
    /**
     * JobRequest
     * @description ``POST /jobs``.
     */
    JobRequest: {
      /**
       * Name
       * @description default: the notebook's name
       * @default
       */
      name?: string;
      /**
       * Parameters
       * @description values for the notebook's `parameters` cell (any JSON type; checked against the types of the declared defaults)
       */
      parameters?: {
        [key: string]: unknown;
      };
      /**
       * Kernel
       * @description kernelspec name; default: the notebook's
       * @default null
       */
      kernel?: string | null;
      /**
       * Timeout
       * @description seconds per attempt; null: none
       * @default null
       */
      timeout?: number | null;
      /**
       * Retries
       * @default 0
       */
      retries?: number;
      /** Tags */
      tags?: string[];
      /** Output Formats */
      output_formats?: ('ipynb' | 'html')[];
      /**
       * Secrets
       * @description environment variables for the job's kernel, stored encrypted and never shown again (views list only their names, as secret_names); a value the job prints is redacted from its log and output
       */
      secrets?: {
        [key: string]: string;
      };
      /**
       * Notify
       * @description notification rules: when (failed, timed_out, completed, late) to tell whom on which channel (email, webhook, jupyterlab); a webhook URL is stored encrypted
       */
      notify?: components['schemas']['NotifyRule'][];
      /**
       * Executor
       * @description where it runs: an installed executor (GET /config); default: the server's
       * @default null
       * @enum {string}
       */
      executor?: 'local' | 'dask';
      /**
       * Path
       * @description the notebook, relative to the server's root directory
       */
      path: string;
      /**
       * Cwd
       * @description working directory (relative to the server root); default: the notebook's folder
       * @default null
       */
      cwd?: string | null;
      /**
       * Allow Unknown
       * @description pass parameters the notebook does not declare
       * @default false
       */
      allow_unknown?: boolean;
      /**
       * Retry Backoff
       * @description seconds before the first retry; doubles each time
       * @default 1
       */
      retry_backoff?: number;
    };
    /** Kernel */
    Kernel: {
      /** Name */
      name: string;
      /** Display Name */
      display_name: string;
      /**
       * Device
       * @enum {string}
       */
      device: 'cpu' | 'gpu';
      /** Installed */
      installed: boolean;
      /**
       * Runs On
       * @enum {string}
       */
      runs_on: 'cpu' | 'gpu';
    };
    /**
     * Kernels
     * @description The CPU and GPU kernelspecs and whether a GPU is really there.
     */
    Kernels: {
      /** Gpu Available */
      gpu_available: boolean;
      /** Gpu Count */
      gpu_count: number;
      /** Gpu Names */
      gpu_names: string[];
      /** Gpu Reason */
      gpu_reason: string;
      /** Kernels */
      kernels: components['schemas']['Kernel'][];
      /** Other Kernels */
      other_kernels: components['schemas']['OtherKernel'][];
    };
    /**
     * LabConfig
     * @description What this server has installed: job executors (from the ``lepton_lab.executors``
     *     entry points) and optional features, the way jupyter-scheduler's ``/config`` tells.
     */
    LabConfig: {
      /** Version */
      version: string;
      /** Default Executor */
      default_executor: string;
      /** Executors */
      executors: components['schemas']['ExecutorInfo'][];
      /**
       * Channels
       * @default []
       */
      channels?: components['schemas']['ExecutorInfo'][];
      /** Features */
      features: {
        [key: string]: boolean;
      };
    };
    /** Metric */
    Metric: {
      /** Id */
      id: number;
      /** Rank */
      rank: number;
      /** Step */
      step: number;
      /** Name */
      name: string;
      /** Value */
      value: number;
      /** Time */
      time: number;
    };
    /** MetricsPage */
    MetricsPage: {
      /** Run Id */
      run_id: string;
      /** Since */
      since: number;
      /**
       * Next
       * @description the cursor to poll with next
       */
      next: number;
      /** Metrics */
      metrics: components['schemas']['Metric'][];
    };
    /**
     * Model
     * @description A model name with all its versions, newest first.
     */
    Model: {
      /** Name */
      name: string;
      /**
       * Aliases
       * @default {}
       */
      aliases?: {
        [key: string]: number;
      };
      /** Versions */
      versions: components['schemas']['ModelVersion'][];
    };
    /** ModelList */
    ModelList: {
      /** Models */
      models: components['schemas']['ModelSummary'][];
    };
    /**
     * ModelRef
     * @description A version by name and number (what a run or a job registered).
     */
    ModelRef: {
      /** Name */
      name: string;
      /** Version */
      version: number;
    };
    /**
     * ModelSummary
     * @description A model name in listings: its newest version and where its aliases point.
     */
    ModelSummary: {
      /** Name */
      name: string;
      /** Framework */
      framework: string;
      /** Versions */
      versions: number;
      /** Latest Version */
      latest_version: number;
      /** Updated At */
      updated_at: number;
      /**
       * Aliases
       * @default {}
       */
      aliases?: {
        [key: string]: number;
      };
      /**
       * Metrics
       * @description the newest version's metrics
       * @default {}
       */
      metrics?: {
        [key: string]: number;
      };
    };
    /**
     * ModelVersion
     * @description One registered version with its lineage, artifacts and evaluations.
     */
    ModelVersion: {
      /** Name */
      name: string;
      /** Version */
      version: number;
      /** Framework */
      framework: string;
      /** Created At */
      created_at: number;
      /**
       * Aliases
       * @default []
       */
      aliases?: string[];
      /**
       * Tags
       * @default {}
       */
      tags?: {
        [key: string]: string;
      };
      /**
       * Metrics
       * @default {}
       */
      metrics?: {
        [key: string]: number;
      };
      /**
       * Params
       * @default {}
       */
      params?: {
        [key: string]: unknown;
      };
      /**
       * Run Id
       * @default null
       */
      run_id?: string | null;
      /**
       * Job Id
       * @default null
       */
      job_id?: string | null;
      /**
       * Notebook
       * @description the notebook that registered it
       * @default null
       */
      notebook?: string | null;
      /**
       * Notebook Sha256
       * @default null
       */
      notebook_sha256?: string | null;
      /** @default null */
      git?: components['schemas']['GitState'] | null;
      /**
       * Versions
       * @description Python, framework and library versions
       * @default {}
       */
      versions?: {
        [key: string]: string;
      };
      /**
       * Artifacts
       * @default []
       */
      artifacts?: components['schemas']['Artifact'][];
      /**
       * Failed Formats
       * @description formats asked for that were not registered, and why
       * @default {}
       */
      failed_formats?: {
        [key: string]: string;
      };
      /**
       * Evaluations
       * @default []
       */
      evaluations?: components['schemas']['Evaluation'][];
    };
    /**
     * Notification
     * @description One message of the log (``GET /notifications``); its target as shown (a webhook's
     *     host, never its URL).
     */
    Notification: {
      /** Id */
      id: number;
      /** Event */
      event: string;
      /** Channel */
      channel: string;
      /** Display */
      display: string;
      /** Subject Kind */
      subject_kind: string;
      /** Subject Id */
      subject_id: string;
      /** User */
      user: string;
      /** Title */
      title: string;
      /**
       * Message
       * @description text, link and the record it is about (the job, run or schedule)
       * @default {}
       */
      message?: {
        [key: string]: unknown;
      };
      /**
       * Status
       * @enum {string}
       */
      status: 'pending' | 'sending' | 'sent' | 'failed';
      /** Attempts */
      attempts: number;
      /** Max Attempts */
      max_attempts: number;
      /** Next Attempt At */
      next_attempt_at: number;
      /**
       * Error
       * @default null
       */
      error?: string | null;
      /** Created At */
      created_at: number;
      /**
       * Sent At
       * @default null
       */
      sent_at?: number | null;
    };
    /** NotificationList */
    NotificationList: {
      /** Notifications */
      notifications: components['schemas']['Notification'][];
      /**
       * Last Id
       * @description the newest id in the log: a cursor for `since`
       */
      last_id: number;
    };
    /**
     * NotifyRule
     * @description When to tell whom, and how: ``{"on": ["failed"], "channel": "email", "to":
     *     ["ann@example.com"]}``, ``{"on": ["failed", "completed"], "channel": "webhook", "url":
     *     "https://hooks.slack.com/..."}``, ``{"on": ["late"], "after": "2h", ...}``.
     *
     *     Each channel (an installed plug-in, ``GET /config``) checks the fields it needs. The lab's
     *     own rules (``c.LeptonLab.notifications``) may also choose which jobs, runs and schedules
     *     they are about (``tags``, ``schedule``, ``notebook``, ``kinds``).
     */
    NotifyRule: {
      /**
       * On
       * @description events that send it
       */
      on: ('failed' | 'timed_out' | 'completed' | 'late')[];
      /**
       * Channel
       * @description email, webhook, jupyterlab...
       */
      channel: string;
      /**
       * To
       * @description email: the addresses
       * @default null
       */
      to?: string[] | null;
      /**
       * Url
       * @description webhook: the http(s) URL (stored encrypted)
       * @default null
       */
      url?: string | null;
      /**
       * After
       * @description 'late': how long a job may stay queued or running, or a schedule may go without firing past its time ('30m', '2h', '1d')
       * @default null
       */
      after?: string | null;
      /**
       * Attach Html
       * @description email: attach the executed notebook's HTML
       * @default false
       */
      attach_html?: boolean;
      /**
       * Tags
       * @description lab rules: jobs or runs with any of these
       * @default null
       */
      tags?: string[] | null;
      /**
       * Schedule
       * @description lab rules: this schedule's jobs (its id)
       * @default null
       */
      schedule?: string | null;
      /**
       * Notebook
       * @description lab rules: notebooks matching this glob
       * @default null
       */
      notebook?: string | null;
      /**
       * Kinds
       * @description lab rules: what they are about (default: jobs and schedules)
       * @default null
       */
      kinds?: ('job' | 'run' | 'schedule')[] | null;
    };
    /**
     * NotifyRuleView
     * @description A stored notification rule as views show it: never a secret.
     */
    NotifyRuleView: {
      /** On */
      on: string[];
      /** Channel */
      channel: string;
      /**
       * Display
       * @description the target: addresses, a webhook's host
       * @default
       */
      display?: string;
      /**
       * After
       * @description 'late' rules: seconds
       * @default null
       */
      after?: number | null;
    };
    /** OtherKernel */
    OtherKernel: {
      /** Name */
      name: string;
      /** Display Name */
      display_name: string;
      /**
       * Device
       * @default null
       */
      device?: null;
    };
    /**
     * Run
     * @description One ``ll.fit`` call. In listings ``usage`` and ``events`` are left out and ``step``
     *     and ``last_metrics`` summarise the progress.
     */
    Run: {
      /** Id */
      id: string;
      /**
       * Name
       * @default
       */
      name?: string;
      /** Framework */
      framework: string;
      /**
       * Status
       * @enum {string}
       */
      status: 'queued' | 'running' | 'completed' | 'failed' | 'stopped';
      /**
       * Params
       * @default {}
       */
      params?: {
        [key: string]: unknown;
      };
      /** World Size */
      world_size: number;
      /**
       * Attempts
       * @default 0
       */
      attempts?: number;
      /** Created At */
      created_at: number;
      /**
       * Started At
       * @default null
       */
      started_at?: number | null;
      /**
       * Ended At
       * @default null
       */
      ended_at?: number | null;
      /**
       * Error
       * @default null
       */
      error?: string | null;
      /**
       * Error Rank
       * @default null
       */
      error_rank?: number | null;
      /**
       * Step
       * @description the highest step reported so far
       * @default null
       */
      step?: number | null;
      /**
       * Last Metrics
       * @description the last reported value of each metric
       * @default {}
       */
      last_metrics?: {
        [key: string]: number;
      };
      /**
       * Usage
       * @default null
       */
      usage?: components['schemas']['RunUsage'][] | null;
      /**
       * Events
       * @default null
       */
      events?: components['schemas']['RunEvent'][] | null;
      /**
       * Models
       * @description the model versions this run registered
       * @default []
       */
      models?: components['schemas']['ModelRef'][];
    };
    /** RunEvent */
    RunEvent: {
      /** Id */
      id: number;
      /** Time */
      time: number;
      /** Kind */
      kind: string;
      /**
       * Rank
       * @default null
       */
      rank?: number | null;
      /**
       * Message
       * @default
       */
      message?: string;
      /**
       * Data
       * @default {}
       */
      data?: {
        [key: string]: unknown;
      };
    };
    /** RunList */
    RunList: {
      /** Runs */
      runs: components['schemas']['Run'][];
    };
    /** RunUsage */
    RunUsage: {
      /** Rank */
      rank: number;
      /** Attempt */
      attempt: number;
      /** Worker */
      worker: string;
      /** Cpu Seconds */
      cpu_seconds: number;
      /** Gpu Seconds */
      gpu_seconds: number;
      /** Peak Memory */
      peak_memory: number;
    };
    /**
     * ScaleRequest
     * @description ``PATCH /cluster``: either a fixed number of ``workers`` (which also turns adaptive
     *     scaling off) or ``adapt`` bounds (which turn it on). The upper bound is the server's
     *     (``max_workers``, or the GPU count on Dask-CUDA), given to validation as the context
     *     ``max_workers``.
     */
    ScaleRequest: {
      /**
       * Workers
       * @description the number of workers to scale to (turns adaptive scaling off)
       * @default null
       */
      workers?: number;
      /**
       * @description adaptive scaling between minimum and maximum workers
       * @default null
       */
      adapt?: components['schemas']['AdaptRequest'];
    };
    /** Schedule */
    Schedule: {
      /** Id */
      id: string;
      /** Name */
      name: string;
      /**
       * Path
       * @description the notebook, relative to the server root
       * @default null
       */
      path?: string | null;
      /** Notebook */
      notebook: string;
      /** Cwd */
      cwd: string;
      /** Parameters */
      parameters: {
        [key: string]: unknown;
      };
      /** Kernel */
      kernel: string;
      /** Executor */
      executor: string;
      /**
       * Timeout
       * @default null
       */
      timeout?: number | null;
      /** Retries */
      retries: number;
      /** Tags */
      tags: string[];
      /** Output Formats */
      output_formats: string[];
      /**
       * Secret Names
       * @description names of the job's secrets (never values)
       * @default []
       */
      secret_names?: string[];
      /**
       * Notify
       * @description its notification rules, as shown (a webhook by its host only)
       * @default []
       */
      notify?: components['schemas']['NotifyRuleView'][];
      /** Created At */
      created_at: number;
      /** Cron */
      cron: string;
      /** Timezone */
      timezone: string;
      /** Active */
      active: boolean;
      /**
       * Overlap
       * @enum {string}
       */
      overlap: 'skip' | 'queue';
      /**
       * Catchup
       * @enum {string}
       */
      catchup: 'once' | 'none';
      /**
       * Next Fire At
       * @default null
       */
      next_fire_at?: number | null;
      /**
       * Last Fired At
       * @default null
       */
      last_fired_at?: number | null;
      /**
       * Last Job Id
       * @default null
       */
      last_job_id?: string | null;
      /** Fired */
      fired: number;
      /** Skipped */
      skipped: number;
      /**
       * Last Error
       * @default null
       */
      last_error?: string | null;
      /**
       * Upcoming
       * @description the next fire times
       * @default null
       */
      upcoming?: number[] | null;
    };
    /** ScheduleList */
    ScheduleList: {
      /** Schedules */
      schedules: components['schemas']['Schedule'][];
    };
    /**
     * SchedulePatch
     * @description ``PATCH /schedules/{id}``: the fields to change (``active: false`` pauses).
     */
    SchedulePatch: {
      /**
       * Cron
       * @description cron expression (5 fields, or 6 with seconds last)
       * @default null
       */
      cron?: string;
      /**
       * Timezone
       * @description IANA name
       * @default null
       */
      timezone?: string;
      /**
       * Active
       * @default null
       */
      active?: boolean;
      /**
       * Overlap
       * @description while the previous job still runs: skip this time, or queue anyway
       * @default null
       * @enum {string}
       */
      overlap?: 'skip' | 'queue';
      /**
       * Catchup
       * @description after downtime: fire once for the missed times, or not at all
       * @default null
       * @enum {string}
       */
      catchup?: 'once' | 'none';
      /**
       * Name
       * @description default: the notebook's name
       * @default null
       */
      name?: string;
      /**
       * Parameters
       * @description values for the notebook's `parameters` cell (any JSON type; checked against the types of the declared defaults)
       * @default null
       */
      parameters?: {
        [key: string]: unknown;
      };
      /**
       * Kernel
       * @description kernelspec name; default: the notebook's
       * @default null
       */
      kernel?: string | null;
      /**
       * Timeout
       * @description seconds per attempt; null: none
       * @default null
       */
      timeout?: number | null;
      /**
       * Retries
       * @default null
       */
      retries?: number;
      /**
       * Tags
       * @default null
       */
      tags?: string[];
      /**
       * Output Formats
       * @default null
       */
      output_formats?: ('ipynb' | 'html')[];
      /**
       * Secrets
       * @description environment variables for the job's kernel, stored encrypted and never shown again (views list only their names, as secret_names); a value the job prints is redacted from its log and output
       * @default null
       */
      secrets?: {
        [key: string]: string;
      };
      /**
       * Notify
       * @description notification rules: when (failed, timed_out, completed, late) to tell whom on which channel (email, webhook, jupyterlab); a webhook URL is stored encrypted
       * @default null
       */
      notify?: components['schemas']['NotifyRule'][];
      /**
       * Executor
       * @description where it runs: an installed executor (GET /config); default: the server's
       * @default null
       * @enum {string}
       */
      executor?: 'local' | 'dask';
      /**
       * Allow Unknown
       * @description pass parameters the notebook does not declare
       * @default null
       */
      allow_unknown?: boolean;
    };
    /**
     * ScheduleRequest
     * @description ``POST /schedules``.
     */
    ScheduleRequest: {
      /**
       * Cron
       * @description cron expression (5 fields, or 6 with seconds last)
       */
      cron: string;
      /**
       * Timezone
       * @description IANA name
       * @default UTC
       */
      timezone?: string;
      /**
       * Active
       * @default true
       */
      active?: boolean;
      /**
       * Overlap
       * @description while the previous job still runs: skip this time, or queue anyway
       * @default skip
       * @enum {string}
       */
      overlap?: 'skip' | 'queue';
      /**
       * Catchup
       * @description after downtime: fire once for the missed times, or not at all
       * @default once
       * @enum {string}
       */
      catchup?: 'once' | 'none';
      /**
       * Name
       * @description default: the notebook's name
       * @default
       */
      name?: string;
      /**
       * Parameters
       * @description values for the notebook's `parameters` cell (any JSON type; checked against the types of the declared defaults)
       */
      parameters?: {
        [key: string]: unknown;
      };
      /**
       * Kernel
       * @description kernelspec name; default: the notebook's
       * @default null
       */
      kernel?: string | null;
      /**
       * Timeout
       * @description seconds per attempt; null: none
       * @default null
       */
      timeout?: number | null;
      /**
       * Retries
       * @default 0
       */
      retries?: number;
      /** Tags */
      tags?: string[];
      /** Output Formats */
      output_formats?: ('ipynb' | 'html')[];
      /**
       * Secrets
       * @description environment variables for the job's kernel, stored encrypted and never shown again (views list only their names, as secret_names); a value the job prints is redacted from its log and output
       */
      secrets?: {
        [key: string]: string;
      };
      /**
       * Notify
       * @description notification rules: when (failed, timed_out, completed, late) to tell whom on which channel (email, webhook, jupyterlab); a webhook URL is stored encrypted
       */
      notify?: components['schemas']['NotifyRule'][];
      /**
       * Executor
       * @description where it runs: an installed executor (GET /config); default: the server's
       * @default null
       * @enum {string}
       */
      executor?: 'local' | 'dask';
      /**
       * Path
       * @description the notebook, relative to the server's root directory
       */
      path: string;
      /**
       * Cwd
       * @description working directory (relative to the server root); default: the notebook's folder
       * @default null
       */
      cwd?: string | null;
      /**
       * Allow Unknown
       * @description pass parameters the notebook does not declare
       * @default false
       */
      allow_unknown?: boolean;
    };
    /**
     * StopAccepted
     * @description A stop was asked for; the run or job stops shortly (202).
     */
    StopAccepted: {
      /** Id */
      id: string;
      /** Status */
      status: string;
      /**
       * Stop Requested
       * @default true
       */
      stop_requested?: boolean;
    };
    /**
     * UsageFigures
     * @description Sums over the records of one group (or all of them).
     */
    UsageFigures: {
      /**
       * Records
       * @default 0
       */
      records?: number;
      /**
       * Cpu Hours
       * @default 0
       */
      cpu_hours?: number;
      /**
       * Gpu Hours
       * @default 0
       */
      gpu_hours?: number;
      /** Gpu Hours By Model */
      gpu_hours_by_model?: {
        [key: string]: number;
      };
      /**
       * Gpu Util Hours
       * @default 0
       */
      gpu_util_hours?: number;
      /**
       * Wall Hours
       * @default 0
       */
      wall_hours?: number;
      /**
       * Peak Memory
       * @default 0
       */
      peak_memory?: number;
      /**
       * Gpu Peak Memory
       * @default 0
       */
      gpu_peak_memory?: number;
      /**
       * Uptime Hours
       * @default 0
       */
      uptime_hours?: number;
      /**
       * Requests
       * @default 0
       */
      requests?: number;
      /**
       * Storage Bytes
       * @default 0
       */
      storage_bytes?: number;
      /**
       * Storage Gb Months
       * @default 0
       */
      storage_gb_months?: number;
      /**
       * Moved Bytes
       * @default 0
       */
      moved_bytes?: number;
      /**
       * Cost
       * @default null
       */
      cost?: number | null;
    };
    /** UsageGroup */
    UsageGroup: {
      /**
       * Records
       * @default 0
       */
      records?: number;
      /**
       * Cpu Hours
       * @default 0
       */
      cpu_hours?: number;
      /**
       * Gpu Hours
       * @default 0
       */
      gpu_hours?: number;
      /** Gpu Hours By Model */
      gpu_hours_by_model?: {
        [key: string]: number;
      };
      /**
       * Gpu Util Hours
       * @default 0
       */
      gpu_util_hours?: number;
      /**
       * Wall Hours
       * @default 0
       */
      wall_hours?: number;
      /**
       * Peak Memory
       * @default 0
       */
      peak_memory?: number;
      /**
       * Gpu Peak Memory
       * @default 0
       */
      gpu_peak_memory?: number;
      /**
       * Uptime Hours
       * @default 0
       */
      uptime_hours?: number;
      /**
       * Requests
       * @default 0
       */
      requests?: number;
      /**
       * Storage Bytes
       * @default 0
       */
      storage_bytes?: number;
      /**
       * Storage Gb Months
       * @default 0
       */
      storage_gb_months?: number;
      /**
       * Moved Bytes
       * @default 0
       */
      moved_bytes?: number;
      /**
       * Cost
       * @default null
       */
      cost?: number | null;
      /**
       * Key
       * @description the day (YYYY-MM-DD), user, notebook, tag or kind
       */
      key: string;
    };
    /**
     * UsageReport
     * @description ``GET /usage``: groups in order (days ascending, the others by cost or CPU hours,
     *     largest first) and the total. A record with several tags counts under each of them, so
     *     with ``group_by=tag`` the groups can sum to more than the total.
     */
    UsageReport: {
      /**
       * Start
       * @description the window's start, seconds since the epoch
       */
      start: number;
      /**
       * End
       * @description the window's end, seconds since the epoch
       */
      end: number;
      /**
       * Group By
       * @enum {string}
       */
      group_by: 'day' | 'user' | 'notebook' | 'tag' | 'kind';
      /**
       * Priced
       * @description whether costs are given (the lab has prices)
       */
      priced: boolean;
      /** Groups */
      groups: components['schemas']['UsageGroup'][];
      total: components['schemas']['UsageFigures'];
    };
    /**
     * VersionPatch
     * @description ``PATCH /models/{name}/versions/{v}``: the aliases that point at this version after the
     *     call (an alias held by another version moves here, atomically), and tags to set (a
     *     ``null`` value removes the tag).
     */
    VersionPatch: {
      /**
       * Aliases
       * @default null
       */
      aliases?: string[] | null;
      /**
       * Tags
       * @default null
       */
      tags?: {
        [key: string]: string | null;
      } | null;
    };
    /** Worker */
    Worker: {
      /** Name */
      name: string;
      /** Address */
      address: string;
      /** Nthreads */
      nthreads: number;
      /** Memory Limit */
      memory_limit: number;
      /** Memory Used */
      memory_used: number;
      /** Cpu */
      cpu: number;
      /** Status */
      status: string;
      /** @default null */
      gpu?: components['schemas']['WorkerGpu'] | null;
    };
    /** WorkerGpu */
    WorkerGpu: {
      /**
       * Name
       * @default null
       */
      name?: string | null;
      /**
       * Utilization
       * @default null
       */
      utilization?: number | null;
      /**
       * Memory Used
       * @default null
       */
      memory_used?: number | null;
      /**
       * Memory Total
       * @default null
       */
      memory_total?: number | null;
    };
  };
  responses: {
    /** @description The request is not valid; `message` names the field and the problem */
    E400: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description Not authenticated, or not authorized for the lepton-lab resource */
    E403: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description Nothing with that id (or no such notebook) */
    E404: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description The resource's state refuses the request */
    E409: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
    /** @description A service the lab needs (its database, its cluster's scheduler) cannot be reached now; `message` names it. Try again later (`Retry-After`) */
    E503: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/json': components['schemas']['Error'];
      };
    };
  };
  parameters: never;
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
  getCluster: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ClusterStatus'];
        };
      };
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  scaleCluster: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['ScaleRequest'];
      };
    };
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ClusterStatus'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  getKernels: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Kernels'];
        };
      };
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  getConfig: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['LabConfig'];
        };
      };
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  listRuns: {
    parameters: {
      query?: {
        status?: 'queued' | 'running' | 'completed' | 'failed' | 'stopped';
        limit?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['RunList'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  getRun: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        run_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Run'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  getRunMetrics: {
    parameters: {
      query?: {
        since?: number;
        limit?: number;
      };
      header?: never;
      path: {
        run_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['MetricsPage'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  stopRun: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        run_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Accepted */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StopAccepted'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  listJobs: {
    parameters: {
      query?: {
        status?:
          | 'queued'
          | 'running'
          | 'completed'
          | 'failed'
          | 'stopped'
          | 'timed_out';
        schedule_id?: string;
        limit?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobList'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  submitJob: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['JobRequest'];
      };
    };
    responses: {
      /** @description Created */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Job'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  getJob: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Job'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  deleteJob: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description No content */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  stopJob: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Accepted */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StopAccepted'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  getJobLogs: {
    parameters: {
      query?: {
        offset?: number;
        limit?: number;
      };
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['JobLogs'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  getJobOutput: {
    parameters: {
      query?: {
        format?: 'ipynb' | 'html';
      };
      header?: never;
      path: {
        job_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': Record<string, unknown>;
          'text/html': string;
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  listSchedules: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ScheduleList'];
        };
      };
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  createSchedule: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['ScheduleRequest'];
      };
    };
    responses: {
      /** @description Created */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Schedule'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  getSchedule: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        schedule_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Schedule'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  deleteSchedule: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        schedule_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description No content */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  updateSchedule: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        schedule_id: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['SchedulePatch'];
      };
    };
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Schedule'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  runSchedule: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        schedule_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Created */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Job'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  listModels: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ModelList'];
        };
      };
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  getModel: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Model'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  compareModel: {
    parameters: {
      query?: {
        metric?: string;
      };
      header?: never;
      path: {
        name: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Comparison'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  getModelVersion: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: string;
        version: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ModelVersion'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  deleteModelVersion: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: string;
        version: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description No content */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  patchModelVersion: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: string;
        version: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['VersionPatch'];
      };
    };
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ModelVersion'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  downloadModelArtifact: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        name: string;
        version: string;
        format: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/octet-stream': string;
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  listDeployments: {
    parameters: {
      query?: {
        status?: 'starting' | 'ready' | 'failed' | 'stopped';
        limit?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['DeploymentList'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  createDeployment: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['DeploymentRequest'];
      };
    };
    responses: {
      /** @description Created */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Deployment'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  getDeployment: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        deployment_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Deployment'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  stopDeployment: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        deployment_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Accepted */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StopAccepted'];
        };
      };
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      409: components['responses']['E409'];
      503: components['responses']['E503'];
    };
  };
  getDeploymentLogs: {
    parameters: {
      query?: {
        offset?: number;
      };
      header?: never;
      path: {
        deployment_id: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['DeploymentLogs'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      404: components['responses']['E404'];
      503: components['responses']['E503'];
    };
  };
  listNotifications: {
    parameters: {
      query?: {
        status?: 'pending' | 'sending' | 'sent' | 'failed';
        channel?: string;
        /** @description only ids above this, oldest first */
        since?: number;
        /** @description only those for the calling user */
        mine?: boolean;
        limit?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['NotificationList'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  getUsage: {
    parameters: {
      query?: {
        /** @description start of the window: `2026-11-01` or an ISO time (default: 7 days ago) */
        from?: string;
        /** @description end of the window, exclusive; a date means the end of that day (default: now) */
        to?: string;
        /** @description one row per day, user, notebook, tag or kind */
        group_by?: 'day' | 'user' | 'notebook' | 'tag' | 'kind';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['UsageReport'];
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  getUsageCSV: {
    parameters: {
      query?: {
        /** @description start of the window: `2026-11-01` or an ISO time (default: 7 days ago) */
        from?: string;
        /** @description end of the window, exclusive; a date means the end of that day (default: now) */
        to?: string;
        /** @description one row per day, user, notebook, tag or kind */
        group_by?: 'day' | 'user' | 'notebook' | 'tag' | 'kind';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'text/csv': string;
        };
      };
      400: components['responses']['E400'];
      403: components['responses']['E403'];
      503: components['responses']['E503'];
    };
  };
  getOpenAPI: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description OK */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': Record<string, unknown>;
        };
      };
      403: components['responses']['E403'];
    };
  };
}
