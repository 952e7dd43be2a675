export { parseHubbleFlow } from './hubble';
export { parseCalicoFlow } from './calico';
export { parseFlowLine } from './flows';
export type { FlowFormat, FlowLineResult } from './flows';
