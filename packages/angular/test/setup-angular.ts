// Imported first by each test file (after `zone.js` where a file wants it): JIT compiler for
// the test components, and the TestBed environment, once per file.
import '@angular/compiler';
import { getTestBed } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';

getTestBed().initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
