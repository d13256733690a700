// The GitHub API calls the workflows make, kept out of the YAML so that each step stays one
// line: `await require('./.github/scripts/github-api.js').<name>({ github, context, core })`
// in actions/github-script (which resolves relative paths from the workspace). Inputs arrive
// through the step's environment, never pasted into code. Reports carry a marker on their
// first line (an HTML comment) by which a later run finds the comment or issue to update.
'use strict';

const fs = require('fs');

function readReport(file) {
  const body = fs.readFileSync(file, 'utf8');
  return { body, marker: body.split('\n', 1)[0] };
}

/** ci.yml: one report comment per pull request, created once and then updated in place. */
async function upsertPullRequestComment({ github, context, core }) {
  const { body, marker } = readReport(process.env.COMMENT_FILE);
  const { owner, repo } = context.repo;
  const issue_number = context.issue.number;
  const comments = await github.paginate(github.rest.issues.listComments, { owner, repo, issue_number, per_page: 100 });
  const mine = comments.find((c) => c.user?.login === 'github-actions[bot]' && c.body?.startsWith(marker));
  if (mine) await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
  else await github.rest.issues.createComment({ owner, repo, issue_number, body });
  core.info(`${mine ? 'updated' : 'created'} the report comment on #${issue_number}`);
}

/** monitor.yml: retrain on the default branch. */
async function dispatchTraining({ github, context, core }) {
  const ref = context.payload.repository.default_branch;
  await github.rest.actions.createWorkflowDispatch({ ...context.repo, workflow_id: 'train.yml', ref });
  core.info(`dispatched train.yml on ${ref}`);
}

/** monitor.yml: one open drift issue; later drift reports become comments on it. */
async function reportDrift({ github, context, core }) {
  const { body, marker } = readReport(process.env.ISSUE_FILE);
  const open = await github.paginate(github.rest.issues.listForRepo, { ...context.repo, state: 'open', labels: 'model-drift', per_page: 100 });
  const mine = open.find((i) => i.body?.startsWith(marker));
  if (mine) await github.rest.issues.createComment({ ...context.repo, issue_number: mine.number, body });
  else await github.rest.issues.create({ ...context.repo, title: process.env.ISSUE_TITLE, body, labels: ['model-drift'] });
  core.info(mine ? `commented on #${mine.number}` : 'opened a drift issue');
}

/**
 * monitor.yml: the AUC guard's failures (guard.json's `actions`, one per environment). Each
 * opens one issue, found again by its marker (environment and version), and only a new
 * issue acts: rollback.yml for that environment or train.yml (`monitor.on_auc_drop`); a
 * failure already reported becomes a comment, so a daily schedule never rolls back twice.
 */
async function reportAucGuard({ github, context, core }) {
  const dir = process.env.ARTIFACT_DIR;
  const report = JSON.parse(fs.readFileSync(`${dir}/${process.env.REPORT_FILE}`, 'utf8'));
  const ref = context.payload.repository.default_branch;
  const open = await github.paginate(github.rest.issues.listForRepo, { ...context.repo, state: 'open', labels: 'model-auc', per_page: 100 });
  for (const failure of report.actions) {
    const { body, marker } = readReport(`${dir}/${failure.issue_file}`);
    const mine = open.find((i) => i.body?.startsWith(marker));
    if (mine) {
      await github.rest.issues.createComment({ ...context.repo, issue_number: mine.number, body });
      core.info(`${failure.environment}: still failing, commented on #${mine.number} (acted when it was opened)`);
      continue;
    }
    const { data } = await github.rest.issues.create({ ...context.repo, title: failure.title, body, labels: ['model-auc'] });
    if (failure.action === 'rollback') {
      const reason = `AUC guard: ${failure.title} (#${data.number})`;
      await github.rest.actions.createWorkflowDispatch({ ...context.repo, workflow_id: 'rollback.yml', ref, inputs: { environment: failure.environment, reason } });
    } else if (failure.action === 'retrain') {
      await github.rest.actions.createWorkflowDispatch({ ...context.repo, workflow_id: 'train.yml', ref });
    }
    core.info(`${failure.environment}: opened #${data.number}, action ${failure.action}`);
  }
}

/** deploy.yml: a failed canary (already rolled back by the controller) opens an issue. */
async function reportFailedDeploy({ github, context, core }) {
  const file = process.env.SUMMARY_FILE;
  const analysis = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : 'The canary stopped before its first analysis: see the job log.';
  const run = `${context.serverUrl}/${context.repo.owner}/${context.repo.repo}/actions/runs/${context.runId}`;
  const body = `Deploy run: ${run}\n\n${analysis}`;
  const { data } = await github.rest.issues.create({ ...context.repo, title: process.env.TITLE, body, labels: ['deploy-failed'] });
  core.info(`opened #${data.number}`);
}

module.exports = { upsertPullRequestComment, dispatchTraining, reportDrift, reportAucGuard, reportFailedDeploy };
