# Sourced by scripts that run jobs side by side: at most $pool_jobs at
# once, each job's output printed whole, in the order the jobs started.
# pool_status ends up 1 if any job failed.
pool_jobs=1
pool_status=0
pool_running=0
pool_pids=""

pool_wait_oldest() {
    pool_first=${pool_pids# }
    pool_first=${pool_first%% *}
    wait "${pool_first%%:*}" || pool_status=1
    cat "${pool_first#*:}"
    pool_pids=${pool_pids#*"$pool_first"}
    pool_running=$((pool_running - 1))
}

# pool_run OUTPUT COMMAND...: runs COMMAND in the background, its output
# (stdout and stderr) to the file OUTPUT; waits first if the pool is full.
pool_run() {
    if [ "$pool_running" -ge "$pool_jobs" ]; then
        pool_wait_oldest
    fi
    pool_out=$1
    shift
    "$@" > "$pool_out" 2>&1 &
    pool_pids="$pool_pids $!:$pool_out"
    pool_running=$((pool_running + 1))
}

pool_finish() {
    while [ "$pool_running" -gt 0 ]; do
        pool_wait_oldest
    done
}
