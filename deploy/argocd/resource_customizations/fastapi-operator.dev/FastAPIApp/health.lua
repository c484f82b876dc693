-- Argo CD health for fastapi-operator.dev/FastAPIApp.
-- Healthy: Ready=True at the current generation. Degraded: Reconciled=False, a failed rollout,
-- or a Gateway that refuses the app's routes or listeners. Progressing: anything else, including
-- status that lags the generation.
local hs = {}
local generation = obj.metadata.generation
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local conditions = {}
for _, condition in ipairs(status.conditions) do
  conditions[condition.type] = condition
end

local reconciled = conditions["Reconciled"]
-- A migration Job still running holds the rollout on purpose: that is progress, not a fault.
if reconciled ~= nil and reconciled.status == "False" and reconciled.reason == "MigrationRunning" then
  hs.status = "Progressing"
  hs.message = "MigrationRunning: " .. (reconciled.message or "")
  return hs
end
if reconciled ~= nil and reconciled.status == "False" then
  hs.status = "Degraded"
  hs.message = (reconciled.reason or "ReconcileError") .. ": " .. (reconciled.message or "")
  return hs
end

local available = conditions["Available"]
if available ~= nil and available.status == "False" and available.reason == "RolloutFailed" then
  hs.status = "Degraded"
  hs.message = "RolloutFailed: " .. (available.message or "")
  return hs
end

-- The Gateway's refusals wait on a change to the Gateway or the spec, not on time.
local gateway_refusals = {RouteNotAccepted = true, RouteRefsNotResolved = true, ListenerSetsNotAllowed = true,
                          ListenerSetNotAccepted = true, ListenerNotProgrammed = true}
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "False" and gateway_refusals[ready.reason] then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

if ready ~= nil and ready.status == "True" and
    (ready.observedGeneration == nil or generation == nil or ready.observedGeneration == generation) then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
else
  hs.message = "Waiting for the Ready condition"
end
return hs
