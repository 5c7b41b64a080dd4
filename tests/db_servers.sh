#!/usr/bin/env bash
# Starts (or stops) the database servers that tests/e2e/persistence_db.rs stores queues in:
# PostgreSQL, MariaDB, memcached and Redis, each on 127.0.0.1 only, as root on Debian.
#
#   eval "$(tests/db_servers.sh start)"   # prints the GEARMAND_TEST_* settings to export
#   tests/db_servers.sh stop $GEARMAND_TEST_STARTED   # only what that start started
#   tests/db_servers.sh stop                          # all of them
#
# tests/run.sh does both, so a server that was already running (another test run, a
# developer's) is left running. The tests fail (they never skip) when a setting is missing.
# Test-private instances (to stop a store mid-run) are started by the tests themselves from
# the same binaries (redis-server, memcached).
set -euo pipefail

PG_USER=gearman
PG_PASSWORD=gearman
PG_DB=gearman
MY_USER=gearman
MY_PASSWORD=gearman
MY_DB=gearman
MEMCACHED_PORT=${GEARMAND_TEST_MEMCACHED_PORT:-21211}
REDIS_PORT=${GEARMAND_TEST_REDIS_PORT:-26379}
RUN_DIR=/tmp/gearmand-test-db
STARTED=()

pg_cluster() {
    # "VERSION NAME" of the first cluster, creating one when there is none.
    local line
    line=$(pg_lsclusters -h 2>/dev/null | head -n1 || true)
    if [ -z "$line" ]; then
        local version
        version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
        pg_createcluster "$version" main >&2
        line=$(pg_lsclusters -h | head -n1)
    fi
    echo "$line" | awk '{print $1, $2}'
}

start_postgres() {
    local version name port
    read -r version name < <(pg_cluster)
    port=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $3}')
    if ! pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $4}' | grep -q online; then
        pg_ctlcluster "$version" "$name" start -- -o "-c listen_addresses=127.0.0.1" >&2
        STARTED+=(postgres)
    fi
    for _ in $(seq 1 50); do
        runuser -u postgres -- psql -p "$port" -qAtc 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.2
    done
    runuser -u postgres -- psql -p "$port" -qAt -v ON_ERROR_STOP=1 >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SQL
    # Nobody else uses a server this run started: earlier runs' tables go.
    if [[ " ${STARTED[*]} " == *" postgres "* ]]; then
        runuser -u postgres -- dropdb -p "$port" --if-exists "$PG_DB" >&2
    fi
    if ! runuser -u postgres -- psql -p "$port" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
        runuser -u postgres -- createdb -p "$port" -O "$PG_USER" "$PG_DB" >&2
    fi
    echo "export GEARMAND_TEST_PG='host=127.0.0.1 port=$port user=$PG_USER password=$PG_PASSWORD dbname=$PG_DB'"
}

start_mariadb() {
    if ! mysqladmin ping >/dev/null 2>&1; then
        if command -v service >/dev/null 2>&1 && [ -x /etc/init.d/mariadb ]; then
            service mariadb start >&2
        else
            mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
            (mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &)
        fi
        STARTED+=(mariadb)
    fi
    for _ in $(seq 1 100); do
        mysqladmin ping >/dev/null 2>&1 && break
        sleep 0.2
    done
    if [[ " ${STARTED[*]} " == *" mariadb "* ]]; then
        mysql -uroot -e "DROP DATABASE IF EXISTS $MY_DB" >&2
    fi
    mysql -uroot >&2 <<SQL
CREATE DATABASE IF NOT EXISTS $MY_DB;
CREATE USER IF NOT EXISTS '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
CREATE USER IF NOT EXISTS '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASSWORD';
GRANT ALL ON $MY_DB.* TO '$MY_USER'@'127.0.0.1';
GRANT ALL ON $MY_DB.* TO '$MY_USER'@'localhost';
SQL
    local port socket
    port=$(mysql -uroot -NBe 'SELECT @@port')
    socket=$(mysql -uroot -NBe 'SELECT @@socket')
    echo "export GEARMAND_TEST_MYSQL='host=127.0.0.1 port=$port user=$MY_USER password=$MY_PASSWORD db=$MY_DB socket=$socket'"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_memcached() {
    # memcached writes its pid file after dropping to the memcache user.
    install -d -o memcache "$RUN_DIR/memcached"
    if ! listening "$MEMCACHED_PORT"; then
        memcached -d -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -u memcache \
            -P "$RUN_DIR/memcached/memcached.pid"
        STARTED+=(memcached)
    fi
    for _ in $(seq 1 50); do
        listening "$MEMCACHED_PORT" && break
        sleep 0.1
    done
    echo "export GEARMAND_TEST_MEMCACHED='127.0.0.1:$MEMCACHED_PORT'"
}

start_redis() {
    mkdir -p "$RUN_DIR/redis"
    if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
            --dir "$RUN_DIR/redis" --pidfile "$RUN_DIR/redis.pid" --save '' \
            --appendonly yes --appendfsync always --logfile "$RUN_DIR/redis.log" >&2
        STARTED+=(redis)
    fi
    for _ in $(seq 1 100); do
        [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
        sleep 0.1
    done
    # Nobody else uses an instance this run started: earlier runs' keys go.
    if [[ " ${STARTED[*]} " == *" redis "* ]]; then
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" flushall >/dev/null
    fi
    echo "export GEARMAND_TEST_REDIS='127.0.0.1:$REDIS_PORT'"
}

# Stops the named servers (postgres, mariadb, memcached, redis), or all of them.
stop() {
    local which=("$@") version name
    [ "${#which[@]}" -gt 0 ] || which=(postgres mariadb memcached redis)
    for server in "${which[@]}"; do
        case "$server" in
        postgres)
            if command -v pg_lsclusters >/dev/null 2>&1; then
                while read -r version name _; do
                    pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true
                done < <(pg_lsclusters -h 2>/dev/null)
            fi
            ;;
        mariadb)
            if mysqladmin ping >/dev/null 2>&1; then
                mysqladmin -uroot shutdown >/dev/null 2>&1 || true
            fi
            ;;
        memcached | redis)
            local pid_file="$RUN_DIR/$server.pid"
            [ "$server" = memcached ] && pid_file="$RUN_DIR/memcached/memcached.pid"
            if [ -f "$pid_file" ]; then
                local pid
                pid=$(cat "$pid_file")
                kill "$pid" 2>/dev/null || true
                for _ in $(seq 1 50); do
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.1
                done
                rm -f "$pid_file"
            fi
            ;;
        esac
    done
}

case "${1:-}" in
start)
    start_postgres
    start_mariadb
    start_memcached
    start_redis
    echo "export GEARMAND_TEST_STARTED='${STARTED[*]}'"
    ;;
stop)
    shift
    stop "$@"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
