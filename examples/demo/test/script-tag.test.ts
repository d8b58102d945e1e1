import { chatSuite, UIS } from './chat-suite';

chatSuite(UIS['script-tag']);
