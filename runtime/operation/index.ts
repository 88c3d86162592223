export { joinOperation, runOperation, operationError, operationOutcome, type RunOptions } from './run.ts';
export { emergencyCommand } from './emergency.ts';
export { faultPoint } from './fault.ts';
export type { InstallPart, OperationContext, OperationOutcome, OperationResult, Plan, SafetyPoint, Step, StepRecord } from './types.ts';
