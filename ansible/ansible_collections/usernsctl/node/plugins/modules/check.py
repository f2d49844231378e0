#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: check
short_description: Preflight a host for user-namespaced containers with usernsctl check
description:
  - Runs C(usernsctl check --output json) and returns its report. It changes nothing, so it runs in
    check mode too.
  - Each check has a stable ID, a status (C(pass), C(warn), C(fail), C(skip)), the values seen with
    their file and line, and the exact remedy.
  - The task fails when the host is not ready (a check failed; with I(strict), also a warning), with
    each failing check and its remedy in C(msg). Every warning becomes an Ansible warning.
version_added: "0.1.0"
author: usernsctl authors (@usernsctl)
requirements:
  - the usernsctl binary on the managed host
  - "root on the managed host for the live probes (C(become: true))"
options:
  target:
    description: What is about to be enabled. Default is detected from what is installed (kubelet, then dockerd, then containerd).
    type: str
    choices: [docker, containerd, kubernetes, rootless]
  user:
    description: "Docker remap user: C(default), C(NAME), C(NAME:GROUP), C(UID) or C(UID:GID) (default: daemon.json, else C(default))."
    type: str
  kubernetes_version:
    description: "Kubernetes version to plan for, C(MAJOR.MINOR) (default: C(kubelet --version))."
    type: str
  strict:
    description: Treat warnings as failures.
    type: bool
    default: false
  ignore:
    description: Check IDs whose failures become warnings, or C(all).
    type: list
    elements: str
    default: []
  warnings:
    description: Report each warning of the report as an Ansible warning.
    type: bool
    default: true
  root:
    description: Check a snapshot tree (C(usernsctl snapshot)) or host tree at this path instead of the host.
    type: path
  binary:
    description: Path of the usernsctl binary on the host. Default is C(usernsctl) on C(PATH).
    type: path
notes:
  - Supports C(check_mode); it runs the same way in check mode, as it only reads.
seealso:
  - module: usernsctl.node.apply
'''

EXAMPLES = r'''
- name: Preflight for Kubernetes 1.33
  usernsctl.node.check:
    target: kubernetes
    kubernetes_version: "1.33"

- name: Collect the report without failing the play
  usernsctl.node.check:
    target: docker
  register: preflight
  failed_when: false

- name: Show what fails
  ansible.builtin.debug:
    msg: "{{ preflight.checks | selectattr('status', 'equalto', 'fail') | map(attribute='id') | list }}"
'''

RETURN = r'''
ready:
  description: Nothing failed (with I(strict), nothing warned either).
  returned: when usernsctl printed its report
  type: bool
msg:
  description: The verdict; when not ready, each failing check with its remedy.
  returned: always
  type: str
target:
  description: The target checked.
  returned: when usernsctl printed its report
  type: str
target_source:
  description: How the target was chosen (C(--target) or what was detected).
  returned: when usernsctl printed its report
  type: str
kernel:
  description: The kernel release.
  returned: when usernsctl printed its report
  type: str
checks:
  description: Every check (C(id), C(title), C(status), C(message), C(remedy), C(evidence), C(ignored)).
  returned: when usernsctl printed its report
  type: list
  elements: dict
summary:
  description: How many checks have each status (C(pass), C(warn), C(fail), C(skip)).
  returned: when usernsctl printed its report
  type: dict
schema:
  description: The JSON contract of the report.
  returned: when usernsctl printed its report
  type: str
  sample: usernsctl.check/v1
version:
  description: usernsctl's version.
  returned: when usernsctl reports it
  type: str
changed:
  description: Always false.
  returned: always
  type: bool
cmd:
  description: The command line that ran.
  returned: when usernsctl ran
  type: list
  elements: str
rc:
  description: usernsctl's exit code.
  returned: when usernsctl ran
  type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.usernsctl.node.plugins.module_utils.usernsctl import run_report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type='str', choices=['docker', 'containerd', 'kubernetes', 'rootless']),
            user=dict(type='str'),
            kubernetes_version=dict(type='str'),
            strict=dict(type='bool', default=False),
            ignore=dict(type='list', elements='str', default=[]),
            warnings=dict(type='bool', default=True),
            root=dict(type='path'),
            binary=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    args = []
    if p['target']:
        args.append('--target=' + p['target'])
    if p['user']:
        args.append('--user=' + p['user'])
    if p['kubernetes_version']:
        args.append('--kubernetes-version=' + p['kubernetes_version'])
    if p['strict']:
        args.append('--strict')
    ignore = [i.strip() for i in p['ignore'] if i and i.strip()]
    if ignore:
        args.append('--ignore=' + ','.join(ignore))
    if p['root']:
        args.append('--root=' + p['root'])
    run_report(module, 'check', args, warnings=p['warnings'])


if __name__ == '__main__':
    main()
