package apps

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/infralab/infralab/internal/testenv"
)

// promtool checks the CNPG alerts and runs unit tests: each fires on its condition and stays
// quiet otherwise.
func TestCNPGAlertsFireOnTheirCondition(t *testing.T) {
	promtool := testenv.Tool(t, "promtool")
	rules, err := yaml.Marshal(map[string]any{"groups": []ruleGroup{{Name: "cnpg", Rules: cnpgAlertRules(24*time.Hour, time.Hour, 30)}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yml"), string(rules))
	write(t, filepath.Join(dir, "test.yml"), cnpgAlertTests)
	for _, args := range [][]string{{"check", "rules", filepath.Join(dir, "rules.yml")}, {"test", "rules", filepath.Join(dir, "test.yml")}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Times: promtool starts at 0 (1970), so a backup stamped 3600 (1h) is 26 h old at 27h.
const cnpgAlertTests = `
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'cnpg_collector_last_available_backup_timestamp{namespace="database",pod="pg-1"}'
        values: '3600x1700'
    alert_rule_test:
      - eval_time: 20h
        alertname: PostgresBackupTooOld
        exp_alerts: []
      - eval_time: 27h
        alertname: PostgresBackupTooOld
        exp_alerts:
          - exp_labels: {severity: critical, namespace: database}
            exp_annotations:
              summary: The newest base backup in database is older than its schedule allows
              description: "The last successful base backup is 1d 2h 0m 0s old, more than the schedule (24h0m0s) plus 1h0m0s: check the ScheduledBackup and the object store."
  - interval: 1m
    input_series:
      - series: 'cnpg_pg_stat_archiver_seconds_since_last_failure{pod="pg-1"}'
        values: '-1 -1 -1 5 5 5 5 5 5 5 5 5'
      - series: 'cnpg_pg_stat_archiver_seconds_since_last_archival{pod="pg-1"}'
        values: '10 10 10 70 130 190 250 310 370 430 490 550'
      - series: 'cnpg_pg_replication_lag{pod="pg-2"}'
        values: '0 0 60 60 60 60 60 60 60 60'
      - series: 'cnpg_pg_replication_in_recovery{pod="pg-2"}'
        values: '1 1 1 1 0 0 0'
      - series: 'cnpg_pg_replication_in_recovery{pod="pg-1"}'
        values: '0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 2m
        alertname: PostgresWALArchivingFailing
        exp_alerts: []
      - eval_time: 9m
        alertname: PostgresWALArchivingFailing
        exp_alerts:
          - exp_labels: {severity: critical, pod: pg-1}
            exp_annotations:
              summary: WAL archiving of pg-1 is failing
              description: The last WAL archive attempt failed after the last success; WAL piles up in pg_wal and point-in-time recovery ends at the last archived segment.
      - eval_time: 8m
        alertname: PostgresReplicationLag
        exp_alerts:
          - exp_labels: {severity: warning, pod: pg-2}
            exp_annotations:
              summary: Standby pg-2 lags the primary
              description: The standby replays WAL 60s behind the primary; a failover now would lose that much with asynchronous replication.
      - eval_time: 3m
        alertname: PostgresFailover
        exp_alerts: []
      - eval_time: 5m
        alertname: PostgresFailover
        exp_alerts:
          - exp_labels: {severity: warning, pod: pg-2}
            exp_annotations:
              summary: pg-2 was promoted to primary
              description: CloudNativePG failed over to pg-2; check why the old primary went away (` + "`kubectl cnpg status`" + `).
`
