export {
  type AuditLogOptions,
  type AuditRecord,
  type AuditVerification,
  auditLog,
  auditLogDefaults,
  verifyAuditLog,
} from './audit-log.js';
