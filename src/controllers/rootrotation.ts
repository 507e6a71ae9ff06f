import type { RootTrustPolicy } from '../resources/gloo.js';
import type { ControllerContext } from './context.js';
import type { TrustPlan } from './trust-plan.js';

/** Part 2: the plan while a RootRotation for this policy is in progress (undefined: none). */
export async function rotationPlan(_ctx: ControllerContext, _rtp: RootTrustPolicy, _base: TrustPlan): Promise<TrustPlan | undefined> {
  return undefined;
}

export async function reconcileRootRotations(_ctx: ControllerContext): Promise<void> {
  // Part 2.
}
