package apps

import (
	"fmt"
	"time"
)

// cnpgAlertRules are the database alerts for a CloudNativePG Cluster, on the metrics its
// instance manager exports (module v1.27.1: pkg/management/postgres/webserver/metricserver/
// pg_collector.go for cnpg_collector_*, config/manager/default-monitoring.yaml for the
// cnpg_pg_replication_* and cnpg_pg_stat_archiver_* queries). They join the shipped rules once
// the apps layer declares the Cluster (docs/database.md). backupEvery is the ScheduledBackup's
// period; the backup alert allows one period plus margin.
func cnpgAlertRules(backupEvery, margin time.Duration, maxLagSeconds float64) []alertRule {
	limit := (backupEvery + margin).Seconds()
	return []alertRule{
		alert("PostgresBackupTooOld",
			fmt.Sprintf(`time() - max by (namespace) (cnpg_collector_last_available_backup_timestamp > 0) > %g`, limit),
			"10m", "critical", "The newest base backup in {{ $labels.namespace }} is older than its schedule allows",
			fmt.Sprintf("The last successful base backup is {{ $value | humanizeDuration }} old, more than the schedule (%s) plus %s: check the ScheduledBackup and the object store.", backupEvery, margin)),
		alert("PostgresWALArchivingFailing",
			// A failure newer than the last success: archiving is stuck, and PITR stops at the last WAL archived.
			`cnpg_pg_stat_archiver_seconds_since_last_failure >= 0 and cnpg_pg_stat_archiver_seconds_since_last_failure < cnpg_pg_stat_archiver_seconds_since_last_archival`,
			"5m", "critical", "WAL archiving of {{ $labels.pod }} is failing",
			"The last WAL archive attempt failed after the last success; WAL piles up in pg_wal and point-in-time recovery ends at the last archived segment."),
		alert("PostgresReplicationLag",
			fmt.Sprintf(`cnpg_pg_replication_lag > %g`, maxLagSeconds),
			"5m", "warning", "Standby {{ $labels.pod }} lags the primary",
			"The standby replays WAL {{ $value }}s behind the primary; a failover now would lose that much with asynchronous replication."),
		alert("PostgresFailover",
			// A pod that was a standby within 10 minutes and is the primary now was promoted.
			`max_over_time(cnpg_pg_replication_in_recovery[10m]) == 1 and cnpg_pg_replication_in_recovery == 0`,
			"", "warning", "{{ $labels.pod }} was promoted to primary",
			"CloudNativePG failed over to {{ $labels.pod }}; check why the old primary went away (`kubectl cnpg status`)."),
	}
}
