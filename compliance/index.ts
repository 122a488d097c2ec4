/** Public entry of the compliance operations: reports, access review and retention plan (docs/reports.md). */
export { loadComplianceSettings, DEFAULT_ERASE_ROLES, DEFAULT_REPORT_ROLES, type ComplianceSettings } from './config.js';
export { resolvePeriod, quarterPeriod, quarterOf, type Period } from './period.js';
export { REPORT_KINDS, REPORT_KIND_NAMES, type ReportKind, type ReportFilter, type ReportFilterName } from './reports/kinds.js';
export { reportCoverage, reportDocument, reportKind, reportParameters, reportQueryParams, type ReportReveal } from './reports/report.js';
export { produce, isoTime, type ProduceDeps, type ProduceRequest, type ProduceResult } from './reports/produce.js';
export { REPORT_FORMATS, writeReport, csvField, type ReportFormat, type WrittenReport } from './reports/writers.js';
export { pdfRowLine } from './reports/pdf.js';
export { TotalsAccumulator, cellText, type ReportDocument, type ReportColumn, type Totals } from './reports/document.js';
export { ReportRecords, decideReportRequest, fileSha256, type ReportDigest, type ReportRequest } from './reports/records.js';
export { accessReview, accessReviewDocument, judgeUse, ACCESS_REVIEW_COLUMNS, type AccessReview, type ReviewRow, type ReviewFlag } from './access-review/review.js';
export { retentionPlan, type RetentionPlan, type EnforcementRow, type PlanStatus } from './retention-plan/plan.js';
export { declaredTtls, serverTtls, type TtlRule } from '../infra/clickhouse/ttl.js';
